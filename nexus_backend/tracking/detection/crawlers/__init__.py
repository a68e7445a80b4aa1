"""Crawlers' published network lists (data files, one per crawler): see rules.load_crawlers and
``manage.py refresh_crawler_networks``. A package only so that the lists ship with the code."""
