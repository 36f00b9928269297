"""The crawler: a Scrapy project (``sites`` spider) that collects evidence for the checks."""
