"""One platform config per git provider: the default platform with its gitProvider block
replaced. Shared by the fast golden tests and the upstream conformance tests."""

from __future__ import annotations

import re

from argo_delivery.config import PlatformConfig, default_config_text, parse_config

# name -> (gitProvider block that replaces `type: github`, EventSource section, secret field)
PROVIDERS = {
    "github": ("type: github", "github", "webhookSecret"),
    "github-enterprise": ("type: github\n  baseURL: https://github.example.com", "github",
                          "webhookSecret"),
    "github-with-token": ("type: github\n  apiToken: {name: git-api-token, key: token}\n"
                          "  webhookURL: https://events.example.com", "github", "webhookSecret"),
    "gitlab": ("type: gitlab\n  baseURL: https://gitlab.example.com\n"
               "  apiToken: {name: git-api-token, key: token}\n"
               "  webhookURL: https://events.example.com", "gitlab", "secretToken"),
    "generic": ("type: generic", "webhook", "authSecret"),
}


# The partner project's own webhook secret (PROJECT_WEBHOOK), as a config line.
PROJECT_WEBHOOK = "    webhookSecret: {name: northwind-webhook, key: secret}\n"


def with_project_webhook(text: str) -> str:
    """The default platform's text with a webhook secret of its own for project northwind."""
    anchor = "    components: [api, billing-adapter]\n"
    assert anchor in text, "the default config's northwind project moved"
    return text.replace(anchor, anchor + PROJECT_WEBHOOK, 1)


def provider_config(name: str, webhook_url: str | None = None,
                    project_webhook: bool = False) -> PlatformConfig:
    """The default platform with provider `name` (and, if given, another gitProvider.webhookURL;
    with `project_webhook`, northwind's own webhook secret)."""
    block = PROVIDERS[name][0]
    if webhook_url is not None:
        block = block.replace("https://events.example.com", webhook_url)
    text = default_config_text().replace("type: github", block, 1)
    if project_webhook:
        text = with_project_webhook(text)
    # the repositories live on the provider (the config refuses an https repo elsewhere)
    host = re.search(r"baseURL: (\S+)", block)
    host = host.group(1) if host else "https://gitlab.com" if "type: gitlab" in block else None
    if host:
        text = text.replace("repo: https://github.com/", f"repo: {host}/")
    return parse_config(text, f"{name}.yaml")
