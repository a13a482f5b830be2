package main

import (
	"flag"
	"io"
	"os"
	"strings"
)

type options struct {
	sensorPath  string
	eventSource string
	eventName   string
	payloadPath string
	sourceType  string
	headers     [][2]string
	printEvent  bool

	// --type resource: the EventSource's group/version/resource and metadata.
	group, version, resource string
	metadata                 map[string]string
}

var sourceTypes = map[string]bool{"github": true, "gitlab": true, "webhook": true, "resource": true}

const typeList = "github, gitlab, webhook or resource"

func parseArgs(args []string) options {
	fs := flag.NewFlagSet(tool, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o options
	var headers, metadata headerFlags
	fs.StringVar(&o.sensorPath, "sensor", "", "Sensor manifest (YAML or JSON)")
	fs.StringVar(&o.eventSource, "eventsource", "", "EventSource name")
	fs.StringVar(&o.eventName, "event", "", "event name inside the EventSource")
	fs.StringVar(&o.payloadPath, "payload", "", "webhook request body, or resource event (JSON)")
	fs.StringVar(&o.sourceType, "type", "", "EventSource type: "+typeList)
	fs.Var(&headers, "header", "request header 'K: V' (repeatable)")
	fs.StringVar(&o.group, "group", "argo-delivery.io", "resource: the EventSource's group")
	fs.StringVar(&o.version, "version", "v1alpha1", "resource: the EventSource's version")
	fs.StringVar(&o.resource, "resource", "versions", "resource: the EventSource's resource")
	fs.Var(&metadata, "metadata", "resource: the EventSource's metadata 'K=V' (repeatable)")
	fs.BoolVar(&o.printEvent, "print-event", false, "print the event the Sensor receives instead of running it")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			usage("help requested")
		}
		usage("%v", err)
	}
	if fs.NArg() > 0 {
		usage("unexpected argument %q", fs.Arg(0))
	}
	required := map[string]string{"--eventsource": o.eventSource, "--event": o.eventName, "--payload": o.payloadPath}
	if !o.printEvent {
		required["--sensor"] = o.sensorPath
	}
	for name, v := range required {
		if v == "" {
			usage("%s is required", name)
		}
	}
	if o.sourceType == "" {
		if !sourceTypes[o.eventName] {
			usage("cannot tell the EventSource type from event name %q; pass --type %s", o.eventName, strings.ReplaceAll(typeList, ", ", "|"))
		}
		o.sourceType = o.eventName
	}
	if !sourceTypes[o.sourceType] {
		usage("unknown --type %q (%s)", o.sourceType, typeList)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.sourceType == "resource" {
		if len(headers) > 0 {
			usage("--header is for webhook types, not --type resource")
		}
		for _, m := range metadata {
			k, v, ok := strings.Cut(m, "=")
			if !ok || k == "" {
				usage("--metadata %q is not 'key=value'", m)
			}
			if o.metadata == nil {
				o.metadata = map[string]string{}
			}
			o.metadata[k] = v
		}
	} else {
		for _, name := range []string{"group", "version", "resource", "metadata"} {
			if set[name] {
				usage("--%s is for --type resource only", name)
			}
		}
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			usage("--header %q is not 'Key: value'", h)
		}
		o.headers = append(o.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	paths := []string{o.payloadPath}
	if o.sensorPath != "" {
		paths = append(paths, o.sensorPath)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			usage("%v", err)
		}
	}
	return o
}
