// Command sensor-sim shows what a Sensor does with one event, using Argo Events'
// own code (github.com/argoproj/argo-events v1.9.11) for every step that matters:
//
//	sensor-sim --sensor SENSOR.yaml --eventsource NAME --event NAME --payload PAYLOAD.json
//	    [--type github|gitlab|webhook] [--header 'K: V' ...]
//	sensor-sim --registered-url EVENTSOURCE.yaml
//
// The second form prints the webhook URL Argo Events registers with GitHub or GitLab
// for each event of the EventSource (see hookurl.go).
//
// The event: the payload is sent (in memory, as an http.Request) to the code the
// EventSource of --type runs, which builds the event data ({"headers"|"header":
// ..., "body": ...}); it is wrapped in a CloudEvent as pkg/eventsources/eventing.go
// does (source = EventSource name, subject = event name) and goes through the
// JSON round trip of the event bus.
//
// The Sensor: validated with pkg/reconciler/sensor.ValidateSensor; then, per
// trigger, its dependency expression (conditions, or all dependencies), its
// dependencies on this EventSource/event, each one's transform and filters
// (pkg/sensors/dependencies.ApplyTransform / Filter) and the expression
// (govaluate), as the JetStream trigger connection does.
//
// Each trigger that fires: ApplyTemplateParameters, then the standard k8s trigger
// (FetchResource, ApplyResourceParameters, Execute) against a fake dynamic
// client; the object it would create is printed as YAML.
//
// --type defaults to the event name when that is github, gitlab or webhook.
// Default headers per type (a --header with the same key replaces them):
// all: Content-Type: application/json; github: X-GitHub-Event: push,
// X-GitHub-Delivery, and X-Hub-Signature-256 always computed over the payload;
// gitlab: X-Gitlab-Event: Push Hook, X-Gitlab-Token; webhook: Authorization
// (masked, as upstream masks it, before the event is built). Stand-in secrets
// make the request pass the EventSource's sender checks.
//
// Output: the created objects on stdout (YAML, "---" separated). When no trigger
// fires, stdout stays empty and stderr says which dependency rejected the event.
// Exit status: 0 a trigger fired, 3 nothing fired, 2 usage error, 1 other error
// (unreadable or invalid Sensor / payload, a trigger failing).
package main

import (
	"fmt"
	"os"
	"strings"
)

const tool = "sensor-sim"

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, tool+": "+format+"\n", args...)
	fmt.Fprintln(os.Stderr, "usage: "+tool+" --sensor SENSOR.yaml --eventsource NAME --event NAME --payload PAYLOAD.json [--type github|gitlab|webhook] [--header 'K: V' ...]")
	os.Exit(2)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, tool+": "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	// Upstream code prints diagnostics with fmt.Printf (e.g. triggers.ResolveParamValue);
	// keep stdout for the YAML only.
	if len(os.Args) == 3 && os.Args[1] == "--registered-url" {
		registeredURLs(os.Args[2])
		return
	}
	stdout := os.Stdout
	os.Stdout = os.Stderr

	opts := parseArgs(os.Args[1:])
	event, err := buildEvent(opts)
	if err != nil {
		fail("building the event: %v", err)
	}
	sensor, err := loadSensor(opts.sensorPath)
	if err != nil {
		fail("%s: %v", opts.sensorPath, err)
	}
	result, err := simulate(sensor, event)
	if err != nil {
		fail("%v", err)
	}
	for _, line := range result.notes {
		fmt.Fprintln(os.Stderr, tool+": "+line)
	}
	if len(result.objects) == 0 {
		os.Exit(3)
	}
	for i, doc := range result.objects {
		if i > 0 {
			fmt.Fprintln(stdout, "---")
		}
		fmt.Fprint(stdout, string(doc))
	}
}
