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
}

var sourceTypes = map[string]bool{"github": true, "gitlab": true, "webhook": true}

func parseArgs(args []string) options {
	fs := flag.NewFlagSet(tool, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o options
	var headers headerFlags
	fs.StringVar(&o.sensorPath, "sensor", "", "Sensor manifest (YAML or JSON)")
	fs.StringVar(&o.eventSource, "eventsource", "", "EventSource name")
	fs.StringVar(&o.eventName, "event", "", "event name inside the EventSource")
	fs.StringVar(&o.payloadPath, "payload", "", "webhook request body (JSON)")
	fs.StringVar(&o.sourceType, "type", "", "EventSource type: github, gitlab or webhook")
	fs.Var(&headers, "header", "request header 'K: V' (repeatable)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			usage("help requested")
		}
		usage("%v", err)
	}
	if fs.NArg() > 0 {
		usage("unexpected argument %q", fs.Arg(0))
	}
	for name, v := range map[string]string{"--sensor": o.sensorPath, "--eventsource": o.eventSource,
		"--event": o.eventName, "--payload": o.payloadPath} {
		if v == "" {
			usage("%s is required", name)
		}
	}
	if o.sourceType == "" {
		if !sourceTypes[o.eventName] {
			usage("cannot tell the EventSource type from event name %q; pass --type github|gitlab|webhook", o.eventName)
		}
		o.sourceType = o.eventName
	}
	if !sourceTypes[o.sourceType] {
		usage("unknown --type %q (github, gitlab or webhook)", o.sourceType)
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			usage("--header %q is not 'Key: value'", h)
		}
		o.headers = append(o.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	for _, p := range []string{o.sensorPath, o.payloadPath} {
		if _, err := os.Stat(p); err != nil {
			usage("%v", err)
		}
	}
	return o
}
