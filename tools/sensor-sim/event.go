package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	gh "github.com/google/go-github/v50/github"
	"github.com/google/uuid"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources/common/webhook"
	"github.com/argoproj/argo-events/pkg/eventsources/events"
	webhooksource "github.com/argoproj/argo-events/pkg/eventsources/sources/webhook"
	"github.com/argoproj/argo-events/pkg/metrics"
	"github.com/argoproj/argo-events/pkg/shared/logging"
)

const (
	endpoint = "/push"
	// Stand-ins for the EventSource's Secrets: the request is signed / authenticated
	// with them so that it passes upstream's checks, as a real delivery would.
	simSecret = "sensor-sim"
)

// defaultHeaders are what the provider sends for a push (Content-Type first).
func defaultHeaders(sourceType string) [][2]string {
	h := [][2]string{{"Content-Type", "application/json"}}
	switch sourceType {
	case "github":
		h = append(h, [2]string{"X-GitHub-Event", "push"},
			[2]string{"X-GitHub-Delivery", "00000000-0000-4000-8000-000000000000"})
	case "gitlab":
		h = append(h, [2]string{"X-Gitlab-Event", "Push Hook"}, [2]string{"X-Gitlab-Token", simSecret})
	case "webhook":
		h = append(h, [2]string{"Authorization", "Bearer " + simSecret})
	}
	return h
}

// buildEvent returns the CloudEvent the EventSource publishes on the event bus,
// after the bus's JSON round trip (what the Sensor receives).
func buildEvent(o options) (*cloudevents.Event, error) {
	var data []byte
	var err error
	if o.sourceType == "resource" {
		data, err = resourceEventData(o)
	} else {
		data, err = webhookTypeEventData(o)
	}
	if err != nil {
		return nil, err
	}

	// pkg/eventsources/eventing.go (inside EventSourceAdaptor.run, unexported): the
	// dispatch function wraps the data into a CloudEvent.
	uuidNew := uuid.New()
	event := cloudevents.NewEvent()
	event.SetID(fmt.Sprintf("%x", uuidNew[:]))
	event.SetType(o.sourceType) // string(s.GetEventSourceType()): "github", "gitlab", "webhook", "resource"
	event.SetSource(o.eventSource)
	event.SetSubject(o.eventName)
	event.SetTime(time.Now())
	if err := event.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return nil, err
	}
	// The EventSource publishes json.Marshal(event); the JetStream trigger
	// connection (pkg/eventbus/jetstream/sensor/trigger_conn.go) json.Unmarshals it.
	wire, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	var received *cloudevents.Event
	if err := json.Unmarshal(wire, &received); err != nil {
		return nil, err
	}
	return received, nil
}

// webhookTypeEventData sends the payload, as an http.Request, to the code of the
// github, gitlab or webhook EventSource and returns the event data it builds.
func webhookTypeEventData(o options) ([]byte, error) {
	payload, err := os.ReadFile(o.payloadPath)
	if err != nil {
		return nil, err
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("%s is not valid JSON", o.payloadPath)
	}

	request := httptest.NewRequest(http.MethodPost, endpoint, bytes.NewReader(payload))
	for _, kv := range defaultHeaders(o.sourceType) {
		request.Header.Set(kv[0], kv[1])
	}
	for _, kv := range o.headers {
		request.Header.Set(kv[0], kv[1])
	}
	writer := httptest.NewRecorder()

	// pkg/eventsources/common/webhook/webhook.go (startServer, unexported): the
	// Authorization header is masked before any router sees the request.
	if request.Header.Get("Authorization") != "" {
		request.Header.Set("Authorization", "*** Masked Auth Secret ***")
	}

	var data []byte
	switch o.sourceType {
	case "github":
		data, err = githubEventData(request, payload)
	case "gitlab":
		data, err = gitlabEventData(request)
	case "webhook":
		data, err = webhookEventData(writer, request, o)
	}
	return data, err
}

// pkg/eventsources/sources/github/start.go: Router.HandleRoute and
// parseValidateRequest (unexported). gh.ValidatePayload is the upstream call;
// the request is signed with a stand-in secret so that it passes.
func githubEventData(request *http.Request, payload []byte) ([]byte, error) {
	mac := hmac.New(sha256.New, []byte(simSecret))
	mac.Write(payload)
	request.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))

	body, err := gh.ValidatePayload(request, []byte(simSecret))
	if err != nil {
		return nil, fmt.Errorf("github: request is not a valid event notification: %w", err)
	}
	// parseValidateRequest
	fields := make(map[string]interface{})
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	for _, h := range []string{"X-GitHub-Event", "X-GitHub-Delivery"} {
		fields[h] = request.Header.Get(h)
	}
	if body, err = json.Marshal(fields); err != nil {
		return nil, err
	}
	// HandleRoute
	return json.Marshal(&events.GithubEventData{
		Headers: request.Header,
		Body:    (*json.RawMessage)(&body),
	})
}

// pkg/eventsources/sources/gitlab/start.go: Router.HandleRoute (the router type
// has unexported fields, so its body is repeated here).
func gitlabEventData(request *http.Request) ([]byte, error) {
	if request.Header.Get("X-Gitlab-Token") != simSecret {
		return nil, fmt.Errorf("gitlab: token mismatch (the EventSource has a secretToken; leave X-Gitlab-Token alone)")
	}
	body, err := io.ReadAll(request.Body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(&events.GitLabEventData{
		Headers: request.Header,
		Body:    (*json.RawMessage)(&body),
	})
}

// pkg/eventsources/sources/webhook/start.go: Router.HandleRoute (unexported
// router fields); the body comes from the exported webhook.GetBody.
func webhookEventData(writer http.ResponseWriter, request *http.Request, o options) ([]byte, error) {
	logger := logging.NewArgoEventsLogger()
	hook := &v1alpha1.WebhookContext{Endpoint: endpoint, Method: http.MethodPost, Port: "12000"}
	route := webhook.NewRoute(hook, logger, o.eventSource, o.eventName, metrics.NewMetrics("sensor-sim"))
	if route.Context.Method != request.Method {
		return nil, fmt.Errorf("webhook: http method does not match")
	}
	body, err := webhooksource.GetBody(&writer, request, route, logger)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return json.Marshal(&events.WebhookEventData{
		Header: request.Header,
		Body:   body,
	})
}
