"""One platform config per git provider: the default platform with its gitProvider block
replaced. Shared by the fast golden tests and the upstream conformance tests."""

from __future__ import annotations

from argo_delivery.config import PlatformConfig, default_config_text, parse_config

# name -> (gitProvider block that replaces `type: github`, EventSource section, secret field)
PROVIDERS = {
    "github": ("type: github", "github", "webhookSecret"),
    "github-enterprise": ("type: github\n  baseURL: https://github.example.com", "github",
                          "webhookSecret"),
    "github-with-token": ("type: github\n  apiToken: {name: git-api-token, key: token}\n"
                          "  webhookURL: https://events.example.com/push", "github", "webhookSecret"),
    "gitlab": ("type: gitlab\n  baseURL: https://gitlab.example.com\n"
               "  apiToken: {name: git-api-token, key: token}\n"
               "  webhookURL: https://events.example.com/push", "gitlab", "secretToken"),
    "generic": ("type: generic", "webhook", "authSecret"),
}


def provider_config(name: str) -> PlatformConfig:
    text = default_config_text().replace("type: github", PROVIDERS[name][0], 1)
    return parse_config(text, f"{name}.yaml")
