"""Scrapy settings, built from :class:`storage.config.Config` (the one source of truth).

``badgewatch scan`` calls :func:`build_settings` with its configuration; ``scrapy crawl sites`` reads
:mod:`crawler.scrapy_project` (``scrapy.cfg``), which applies it to the configuration of the working
directory. Nothing is loaded when this module is imported.

Tuned as Scrapy's "broad crawls" advice says: high global concurrency with a per-IP limit, cookies,
robots.txt, Scrapy's retries, redirects (we follow them ourselves and record every hop), telnet,
memory-usage and log-stats extensions off; ``CONCURRENT_ITEMS = 1`` (the default 100 starts that many
tasks per callback output; we return one item per subject).
"""

from __future__ import annotations

from typing import Any

from crawler.context import SETTINGS_KEY, config_to_setting
from storage.config import Config

BOT_NAME = "badgewatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"


def build_settings(config: Config, **overrides: Any) -> dict[str, Any]:
    """Scrapy settings for a scan with ``config``; ``overrides`` win (benchmarks, tests)."""
    settings: dict[str, Any] = {
        "BOT_NAME": BOT_NAME,
        "SPIDER_MODULES": SPIDER_MODULES,
        "NEWSPIDER_MODULE": NEWSPIDER_MODULE,
        SETTINGS_KEY: config_to_setting(config),
        "USER_AGENT": config.user_agent,
        "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False,
        "RETRY_ENABLED": False,  # transient failures are retried by the scan's confirmation pass
        "REDIRECT_ENABLED": False,  # every hop is followed and recorded by the spider
        "METAREFRESH_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "LOG_INSTALL_ROOT_HANDLER": False,
        "CONCURRENT_REQUESTS": config.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.per_ip_concurrency,  # slots are IP addresses
        "CONCURRENT_ITEMS": 1,
        "DOWNLOAD_DELAY": 0,
        "DOWNLOAD_DELAY_JITTER": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_TIMEOUT": config.timeout_s,
        "DNS_TIMEOUT": config.dns_timeout_s,
        "DOWNLOAD_MAXSIZE": config.max_body_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_FAIL_ON_DATALOSS": False,
        "HTTPERROR_ALLOW_ALL": True,
        "DNSCACHE_ENABLED": False,  # our resolver caches (and is shared with the DNS checks)
        "TWISTED_DNS_RESOLVER": "crawler.twisted_dns.TwistedNameResolver",
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "REACTOR_THREADPOOL_MAXSIZE": 4,
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue",
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.middlewares.ResolveGuardMiddleware": 50,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware": 350,
            "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware": 400,
            "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": 500,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
            "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
            "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
            "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
        },
        "SPIDER_MIDDLEWARES": {
            "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
        },
        "EXTENSIONS": {
            "scrapy.extensions.telnet.TelnetConsole": None,
            "scrapy.extensions.memusage.MemoryUsage": None,
            "scrapy.extensions.logstats.LogStats": None,
            "scrapy.extensions.corestats.CoreStats": None,
            "scrapy.extensions.remote_control.RemoteControl": None,
        },
        "ITEM_PIPELINES": {"crawler.pipelines.StorePipeline": 500},
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
        },
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "DOWNLOAD_HANDLERS": {
            "http": "crawler.download.ShortKeepAliveHandler",
            "https": "crawler.download.ShortKeepAliveHandler",
        },
    }
    settings.update(overrides)
    return settings
