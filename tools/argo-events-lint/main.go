// Command argo-events-lint validates Argo Events manifests with Argo Events'
// own validation code, after a strict decode into the upstream Go types.
//
//	argo-events-lint PATH...
//
// Every Sensor, EventSource and EventBus (apiVersion argoproj.io/v1alpha1)
// found in PATH (files, or folders walked recursively for *.yaml, *.yml and
// *.json; multi-document YAML allowed) is checked:
//
//   - strict decoding: unknown fields, duplicate keys and wrong types fail
//     (upstream's controllers and admission webhook decode leniently);
//   - EventSource: reconciler/eventsource.ValidateEventSource (what the
//     controller and the admission webhook run, incl. per-source checks);
//   - Sensor: reconciler/sensor.ValidateSensor, with the EventBus named by
//     spec.eventBusName (default "default") from the given files, else a
//     default JetStream EventBus;
//   - EventBus: reconciler/eventbus.ValidateEventBus;
//   - Sensor triggers may only name declared dependencies (deps.go): the
//     conditions check mirrors what the sensor does at start-up, the
//     dependencyName check is ours (upstream resolves it only per event).
//
// Output: one line per problem on stdout, "FILE: Kind/name: message".
// Exit status: 0 all valid, 1 any problem, 2 usage error.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	eventbusctrl "github.com/argoproj/argo-events/pkg/reconciler/eventbus"
	eventsourcectrl "github.com/argoproj/argo-events/pkg/reconciler/eventsource"
	sensorctrl "github.com/argoproj/argo-events/pkg/reconciler/sensor"
)

const tool = "argo-events-lint"

// Same document separator as Argo Workflows' common.ParseObjects.
var yamlSeparator = regexp.MustCompile(`\n---`)

var manifestExt = map[string]bool{".yaml": true, ".yml": true, ".json": true}

type problem struct{ file, kind, name, msg string }

func (p problem) String() string {
	msg := strings.ReplaceAll(strings.TrimSpace(p.msg), "\n", " ")
	return fmt.Sprintf("%s: %s/%s: %s", p.file, p.kind, p.name, msg)
}

type doc struct {
	file string
	kind string
	name string
	ns   string
	obj  any // *v1alpha1.Sensor | *v1alpha1.EventSource | *v1alpha1.EventBus
	raw  []byte
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, tool+": "+format+"\n", args...)
	fmt.Fprintln(os.Stderr, "usage: "+tool+" PATH...")
	os.Exit(2)
}

func main() {
	paths := os.Args[1:]
	if len(paths) == 0 {
		usage("no paths given")
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "-") {
			usage("unknown option %q", p)
		}
	}

	var files []string
	seen := map[string]bool{}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !(path == root || manifestExt[filepath.Ext(path)]) {
				return nil
			}
			if !seen[filepath.Clean(path)] {
				seen[filepath.Clean(path)] = true
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			usage("%v", err)
		}
	}

	var problems []problem
	var docs []doc
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			usage("%v", err)
		}
		ds, ps := parseFile(file, data)
		docs = append(docs, ds...)
		problems = append(problems, ps...)
	}

	// EventBuses by namespace/name, for the Sensors' validation.
	buses := map[string]*v1alpha1.EventBus{}
	for _, d := range docs {
		if eb, ok := d.obj.(*v1alpha1.EventBus); ok {
			buses[d.ns+"/"+d.name] = eb
		}
	}

	linted := 0
	for _, d := range docs {
		linted++
		var errs []error
		switch o := d.obj.(type) {
		case *v1alpha1.EventSource:
			if err := eventsourcectrl.ValidateEventSource(o); err != nil {
				errs = append(errs, err)
			}
		case *v1alpha1.EventBus:
			if err := eventbusctrl.ValidateEventBus(o); err != nil {
				errs = append(errs, err)
			}
		case *v1alpha1.Sensor:
			busName := o.Spec.EventBusName
			if busName == "" {
				busName = v1alpha1.DefaultEventBusName
			}
			bus := buses[d.ns+"/"+busName]
			if bus == nil {
				bus = defaultEventBus(busName, d.ns)
			}
			if err := sensorctrl.ValidateSensor(o, bus); err != nil {
				errs = append(errs, err)
			}
			errs = append(errs, checkDependencyReferences(o)...)
		}
		for _, err := range errs {
			problems = append(problems, problem{d.file, d.kind, d.name, err.Error()})
		}
	}

	for _, p := range problems {
		fmt.Println(p)
	}
	fmt.Fprintf(os.Stderr, "%s: %d Argo Events object(s) in %d file(s), %d problem(s)\n", tool, linted, len(files), len(problems))
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// defaultEventBus is what a stock Argo Events install creates: a JetStream bus.
func defaultEventBus(name, ns string) *v1alpha1.EventBus {
	return &v1alpha1.EventBus{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.EventBusSpec{JetStream: &v1alpha1.JetStreamBus{Version: "latest"}},
	}
}

// parseFile splits a file into documents and strictly decodes the Argo Events ones.
func parseFile(file string, data []byte) ([]doc, []problem) {
	var docs []doc
	var problems []problem
	texts := yamlSeparator.Split(string(data), -1)
	if isJSON(data) {
		texts = []string{string(data)}
	}
	for i, text := range texts {
		if strings.TrimSpace(text) == "" {
			continue
		}
		docName := fmt.Sprintf("document#%d", i+1)
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(text), &head); err != nil {
			problems = append(problems, problem{file, "?", docName, "invalid YAML: " + err.Error()})
			continue
		}
		var obj any
		switch head.Kind {
		case "Sensor":
			obj = &v1alpha1.Sensor{}
		case "EventSource":
			obj = &v1alpha1.EventSource{}
		case "EventBus":
			obj = &v1alpha1.EventBus{}
		default:
			continue // not ours
		}
		if group, _, _ := strings.Cut(head.APIVersion, "/"); group != "argoproj.io" {
			continue // a same-named kind of another API group
		}
		name := head.Metadata.Name
		if name == "" {
			name = head.Metadata.GenerateName
		}
		if name == "" {
			name = docName
		}
		if head.APIVersion != "argoproj.io/v1alpha1" {
			problems = append(problems, problem{file, head.Kind, name, fmt.Sprintf("unsupported apiVersion %q (want argoproj.io/v1alpha1)", head.APIVersion)})
			continue
		}
		if err := decodeStrict([]byte(text), obj); err != nil {
			problems = append(problems, problem{file, head.Kind, name, err.Error()})
			continue
		}
		docs = append(docs, doc{file: file, kind: head.Kind, name: name, ns: head.Metadata.Namespace, obj: obj, raw: []byte(text)})
	}
	return docs, problems
}

// decodeStrict is the strict decoding Argo Workflows' lint uses
// (yaml.YAMLToJSONStrict + sigs.k8s.io/json UnmarshalStrict), applied to the
// Argo Events types.
func decodeStrict(text []byte, obj any) error {
	body, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(body, obj)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return runtime.NewStrictDecodingError(strictErrs)
	}
	return nil
}

func isJSON(data []byte) bool {
	s := strings.TrimSpace(string(data))
	return strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")
}
