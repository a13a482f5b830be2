// Command sensor-sim shows what a Sensor does with one event, using Argo Events'
// own code (github.com/argoproj/argo-events v1.9.11) for every step that matters:
//
//	sensor-sim --sensor SENSOR.yaml --eventsource NAME --event NAME --payload PAYLOAD.json
//	    [--type github|gitlab|webhook] [--header 'K: V' ...]
//	sensor-sim --sensor SENSOR.yaml --eventsource NAME --event NAME --payload EVENT.json
//	    --type resource [--group G] [--version V] [--resource R] [--metadata 'K=V' ...]
//	sensor-sim --print-event --eventsource NAME --event NAME --payload FILE [--type ...]
//	sensor-sim --registered-url EVENTSOURCE.yaml
//
// The last form prints the webhook URL Argo Events registers with GitHub or GitLab
// for each event of the EventSource (see hookurl.go). --print-event prints the
// data of the event the Sensor would receive (the JSON its filters' paths and
// trigger parameters' dataKeys address, byte for byte) instead of running a
// Sensor.
//
// The event of a webhook type (github, gitlab, webhook): the payload is sent (in
// memory, as an http.Request) to the code the EventSource of --type runs, which
// builds the event data ({"headers"|"header": ..., "body": ...}).
//
// The event of --type resource (see resource.go): the payload is what the
// resource EventSource's informer hands its event handler,
//
//	{"type": "ADD"|"UPDATE"|"DELETE", "body": OBJECT, "oldBody": OBJECT}
//
// (oldBody for UPDATE only; objects need apiVersion and kind, as every object
// from the API server has). The event data is built as
// pkg/eventsources/sources/resource/start.go does: events.ResourceEventData
// {"type", "body", "oldBody", "group", "version", "resource", "metadata"}, with
// "oldBody": null for ADD and DELETE and "metadata" only when --metadata is
// given; group/version/resource are the EventSource's (--group, --version,
// --resource; default argo-delivery.io, v1alpha1, versions). An UPDATE whose
// body and oldBody have the same metadata.resourceVersion is dropped, as
// upstream drops it (exit 3). The EventSource's own spec.resource.filter is
// not applied.
//
// Either way the data is wrapped in a CloudEvent as pkg/eventsources/eventing.go
// does (type = --type, source = EventSource name, subject = event name) and goes
// through the JSON round trip of the event bus.
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
// --type defaults to the event name when that is github, gitlab, webhook or
// resource. Default headers per type (a --header with the same key replaces them):
// all: Content-Type: application/json; github: X-GitHub-Event: push,
// X-GitHub-Delivery, and X-Hub-Signature-256 always computed over the payload;
// gitlab: X-Gitlab-Event: Push Hook, X-Gitlab-Token; webhook: Authorization
// (masked, as upstream masks it, before the event is built). Stand-in secrets
// make the request pass the EventSource's sender checks.
//
// Output: the created objects on stdout (YAML, "---" separated). When no trigger
// fires, stdout stays empty and stderr says which dependency rejected the event.
// Exit status: 0 a trigger fired (or --print-event printed the event), 3 nothing
// fired (or the EventSource publishes no event), 2 usage error, 1 other error
// (unreadable or invalid Sensor / payload, a trigger failing).
package main

import (
	"errors"
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
	fmt.Fprintln(os.Stderr, "usage: "+tool+" --sensor SENSOR.yaml --eventsource NAME --event NAME --payload PAYLOAD.json [--type github|gitlab|webhook] [--header 'K: V' ...]\n"+
		"       "+tool+" --sensor SENSOR.yaml --eventsource NAME --event NAME --payload EVENT.json --type resource [--group G] [--version V] [--resource R] [--metadata 'K=V' ...]\n"+
		"       "+tool+" --print-event --eventsource NAME --event NAME --payload FILE [--type ...]\n"+
		"       "+tool+" --registered-url EVENTSOURCE.yaml")
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
	var dropped droppedError
	if errors.As(err, &dropped) {
		fmt.Fprintln(os.Stderr, tool+": "+dropped.reason)
		os.Exit(3)
	}
	if err != nil {
		fail("building the event: %v", err)
	}
	if opts.printEvent {
		fmt.Fprintln(stdout, string(event.Data()))
		return
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
