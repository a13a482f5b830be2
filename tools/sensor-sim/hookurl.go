package main

import (
	"fmt"
	"os"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	sharedutil "github.com/argoproj/argo-events/pkg/shared/util"
)

// registeredURLs prints, for every GitHub and GitLab event of an EventSource, the URL that
// Argo Events registers as the repository's webhook: sharedutil.FormattedURL(webhook.url,
// webhook.endpoint), exactly as pkg/eventsources/sources/{github,gitlab}/start.go compute
// it. One line per event: "<type>/<event name>: <url>" (sorted); nothing for an event
// that registers no hook (no url).
func registeredURLs(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var source v1alpha1.EventSource
	if err := yaml.UnmarshalStrict(data, &source); err != nil {
		fail("%s: %v", path, err)
	}
	var lines []string
	for name, event := range source.Spec.Github {
		if event.Webhook != nil && event.Webhook.URL != "" {
			lines = append(lines, fmt.Sprintf("github/%s: %s", name,
				sharedutil.FormattedURL(event.Webhook.URL, event.Webhook.Endpoint)))
		}
	}
	for name, event := range source.Spec.Gitlab {
		if event.Webhook != nil && event.Webhook.URL != "" {
			lines = append(lines, fmt.Sprintf("gitlab/%s: %s", name,
				sharedutil.FormattedURL(event.Webhook.URL, event.Webhook.Endpoint)))
		}
	}
	sort.Strings(lines)
	for _, line := range lines {
		fmt.Println(line)
	}
}
