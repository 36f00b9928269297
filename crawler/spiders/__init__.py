"""Scrapy spiders of the badgewatch project (``scrapy crawl sites``)."""
