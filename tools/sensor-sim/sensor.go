package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/Knetic/govaluate"
	"github.com/antonmedv/expr"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	sensorreconciler "github.com/argoproj/argo-events/pkg/reconciler/sensor"
	sensordependencies "github.com/argoproj/argo-events/pkg/sensors/dependencies"
	sensortriggers "github.com/argoproj/argo-events/pkg/sensors/triggers"
	standardk8s "github.com/argoproj/argo-events/pkg/sensors/triggers/standard-k8s"
)

type result struct {
	objects [][]byte // YAML of each object a trigger would create
	notes   []string // what happened, per trigger and dependency (stderr)
}

func loadSensor(path string) (*v1alpha1.Sensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sensor := &v1alpha1.Sensor{}
	if err := yaml.UnmarshalStrict(raw, sensor); err != nil {
		return nil, fmt.Errorf("not a Sensor: %w", err)
	}
	if sensor.Kind != "Sensor" {
		return nil, fmt.Errorf("kind is %q, not Sensor", sensor.Kind)
	}
	// What the controller checks before it deploys the Sensor (JetStream bus).
	bus := &v1alpha1.EventBus{Spec: v1alpha1.EventBusSpec{JetStream: &v1alpha1.JetStreamBus{}}}
	if err := sensorreconciler.ValidateSensor(sensor, bus); err != nil {
		return nil, fmt.Errorf("invalid Sensor: %w", err)
	}
	return sensor, nil
}

// dependencyExpression repeats SensorContext.getDependencyExpression
// (pkg/sensors/listener.go, an unexported method): conditions with dependency
// names, or all dependencies joined with "&&".
func dependencyExpression(sensor *v1alpha1.Sensor, trigger v1alpha1.Trigger) (string, error) {
	translate := func(originalExpr string, parameters map[string]string) (string, error) {
		originalExpr = strings.ReplaceAll(originalExpr, "&&", " + \"&&\" + ")
		originalExpr = strings.ReplaceAll(originalExpr, "||", " + \"||\" + ")
		originalExpr = strings.ReplaceAll(originalExpr, "-", "_")
		originalExpr = strings.ReplaceAll(originalExpr, "(", "\"(\"+")
		originalExpr = strings.ReplaceAll(originalExpr, ")", "+\")\"")
		program, err := expr.Compile(originalExpr, expr.Env(parameters))
		if err != nil {
			return "", err
		}
		out, err := expr.Run(program, parameters)
		if err != nil {
			return "", err
		}
		newExpr := fmt.Sprintf("%v", out)
		newExpr = strings.ReplaceAll(newExpr, "\"(\"", "(")
		newExpr = strings.ReplaceAll(newExpr, "\")\"", ")")
		return newExpr, nil
	}
	if trigger.Template.Conditions != "" {
		mapping := make(map[string]string)
		for _, dep := range sensor.Spec.Dependencies {
			mapping[strings.ReplaceAll(dep.Name, "-", "_")] = dep.Name
		}
		return translate(trigger.Template.Conditions, mapping)
	}
	var deps []string
	for _, dep := range sensor.Spec.Dependencies {
		deps = append(deps, dep.Name)
	}
	return strings.Join(deps, "&&"), nil
}

// convertEvent repeats convertEvent of pkg/sensors/listener.go (unexported).
func convertEvent(event cloudevents.Event) *v1alpha1.Event {
	return &v1alpha1.Event{
		Context: &v1alpha1.EventContext{
			DataContentType: event.Context.GetDataContentType(),
			Source:          event.Context.GetSource(),
			SpecVersion:     event.Context.GetSpecVersion(),
			Type:            event.Context.GetType(),
			Time:            metav1.Time{Time: event.Context.GetTime()},
			ID:              event.Context.GetID(),
			Subject:         event.Context.GetSubject(),
		},
		Data: event.Data(),
	}
}

func unique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// simulate runs every trigger of the Sensor on one event, the way each trigger's
// goroutine in listener.go (listenEvents) and its JetStream connection
// (pkg/eventbus/jetstream/sensor/trigger_conn.go: NewJetstreamTriggerConn,
// processMsg, processDependency) handle a message, for a freshly started
// Sensor (no dependency saved from earlier events).
func simulate(sensor *v1alpha1.Sensor, event *cloudevents.Event) (*result, error) {
	res := &result{}
	depMapping := make(map[string]v1alpha1.EventDependency)
	for _, d := range sensor.Spec.Dependencies {
		depMapping[d.Name] = d
	}
	failed := 0
	for _, trigger := range sensor.Spec.Triggers {
		name := trigger.Template.Name
		depExpression, err := dependencyExpression(sensor, trigger)
		if err != nil {
			res.notes = append(res.notes, fmt.Sprintf("trigger %s: bad conditions %q: %v (upstream never starts this trigger)", name, trigger.Template.Conditions, err))
			continue
		}
		evaluable, err := govaluate.NewEvaluableExpression(strings.ReplaceAll(depExpression, "-", "\\-"))
		if err != nil {
			res.notes = append(res.notes, fmt.Sprintf("trigger %s: bad dependency expression %q: %v (upstream never starts this trigger)", name, depExpression, err))
			continue
		}
		var deps []v1alpha1.EventDependency
		missing := ""
		for _, depName := range unique(evaluable.Vars()) {
			dep, ok := depMapping[depName]
			if !ok {
				missing = depName
				break
			}
			deps = append(deps, dep)
		}
		if missing != "" {
			res.notes = append(res.notes, fmt.Sprintf("trigger %s: conditions name dependency %q, which the Sensor does not have (upstream never starts this trigger)", name, missing))
			continue
		}

		// getDependencyNames: the trigger's dependencies on this EventSource + event.
		var matching []v1alpha1.EventDependency
		for _, dep := range deps {
			if dep.EventSourceName == event.Source() && dep.EventName == event.Subject() {
				matching = append(matching, dep)
			}
		}
		if len(matching) == 0 {
			res.notes = append(res.notes, fmt.Sprintf("trigger %s: none of its dependencies (%s) is on eventsource %q event %q", name, depNamesOf(deps), event.Source(), event.Subject()))
			continue
		}

		requiresANDLogic := strings.Contains(depExpression, "&")
		saved := map[string]cloudevents.Event{}
		for _, dep := range matching {
			// transformFunc
			ev := event
			if dep.Transform != nil {
				if ev, err = sensordependencies.ApplyTransform(event, dep.Transform); err != nil {
					res.notes = append(res.notes, fmt.Sprintf("trigger %s: dependency %s: transform failed, event dropped: %v", name, dep.Name, err))
					continue
				}
			}
			// filterFunc
			if dep.Filters != nil {
				argoEvent := convertEvent(*ev)
				ok, ferr := sensordependencies.Filter(argoEvent, dep.Filters, dep.FiltersLogicalOperator)
				if !ok {
					why := "filter result false"
					if ferr != nil {
						why = "filtering error: " + ferr.Error()
					}
					res.notes = append(res.notes, fmt.Sprintf("trigger %s: dependency %s rejected the event (%s)%s", name, dep.Name, why, explainFilters(argoEvent, dep)))
					continue
				}
				if ferr != nil {
					res.notes = append(res.notes, fmt.Sprintf("trigger %s: dependency %s passed with a filtering error: %v", name, dep.Name, ferr))
				}
			}
			fire := map[string]cloudevents.Event{}
			if !requiresANDLogic {
				fire[dep.Name] = *ev
			} else {
				parameters := make(map[string]interface{}, len(deps))
				for _, d := range deps {
					parameters[d.Name] = false
				}
				for prev := range saved {
					parameters[prev] = true
				}
				parameters[dep.Name] = true
				out, err := evaluable.Evaluate(parameters)
				if err != nil {
					res.notes = append(res.notes, fmt.Sprintf("trigger %s: failed to evaluate dependency expression %q: %v", name, depExpression, err))
					continue
				}
				if out != true {
					saved[dep.Name] = *ev
					res.notes = append(res.notes, fmt.Sprintf("trigger %s: dependency %s passed; %q still needs other events, nothing fires yet", name, dep.Name, depExpression))
					continue
				}
				for prev, e := range saved {
					fire[prev] = e
				}
				fire[dep.Name] = *ev
				saved = map[string]cloudevents.Event{}
			}
			doc, err := runTrigger(sensor, trigger, fire)
			if err != nil {
				failed++
				res.notes = append(res.notes, fmt.Sprintf("trigger %s: fired on %s but failed: %v", name, depNamesOfMap(fire), err))
				continue
			}
			res.notes = append(res.notes, fmt.Sprintf("trigger %s: fired on %s", name, depNamesOfMap(fire)))
			res.objects = append(res.objects, doc)
		}
	}
	if failed > 0 {
		return res, fmt.Errorf("%d trigger action(s) failed:\n  %s", failed, strings.Join(res.notes, "\n  "))
	}
	return res, nil
}

// runTrigger is SensorContext.triggerOne (pkg/sensors/listener.go) for a k8s
// trigger, against a fake dynamic client: returns the YAML of the object created.
func runTrigger(sensor *v1alpha1.Sensor, t v1alpha1.Trigger, fired map[string]cloudevents.Event) ([]byte, error) {
	ctx := context.Background()
	events := make(map[string]*v1alpha1.Event, len(fired))
	for k, v := range fired {
		events[k] = convertEvent(v)
	}
	trigger := t.DeepCopy()
	if err := sensortriggers.ApplyTemplateParameters(events, trigger); err != nil {
		return nil, fmt.Errorf("failed to apply template parameters, %w", err)
	}
	if trigger.Template.K8s == nil {
		return nil, fmt.Errorf("not a k8s trigger; sensor-sim renders k8s triggers only")
	}
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	impl := standardk8s.NewStandardK8sTrigger(nil, client, sensor, trigger, zap.NewNop().Sugar())
	obj, err := impl.FetchResource(ctx)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("could not fetch the trigger resource")
	}
	updated, err := impl.ApplyResourceParameters(events, obj)
	if err != nil {
		return nil, err
	}
	created, err := impl.Execute(ctx, events, updated)
	if err != nil {
		return nil, fmt.Errorf("failed to execute trigger, %w", err)
	}
	// ApplyPolicy (waiting for the created object's labels) needs a cluster; not run.
	u, ok := created.(*unstructured.Unstructured)
	if !ok || u == nil {
		return nil, fmt.Errorf("operation %q created no object", trigger.Template.K8s.Operation)
	}
	return yaml.Marshal(u.Object)
}

// explainFilters shows, for a rejected event, each filter's own result
// (upstream Filter on that filter alone) and the values its fields read.
func explainFilters(event *v1alpha1.Event, dep v1alpha1.EventDependency) string {
	var parts []string
	for i, e := range dep.Filters.Exprs {
		ok, err := sensordependencies.Filter(event, &v1alpha1.EventDependencyFilter{Exprs: []v1alpha1.ExprFilter{e}}, "")
		var vals []string
		for _, f := range e.Fields {
			vals = append(vals, fmt.Sprintf("%s=%s", f.Name, gjsonShow(event.Data, f.Path)))
		}
		parts = append(parts, fmt.Sprintf("exprs[%d] -> %v%s with %s", i, ok, errSuffix(err), strings.Join(vals, ", ")))
	}
	for i, d := range dep.Filters.Data {
		ok, err := sensordependencies.Filter(event, &v1alpha1.EventDependencyFilter{Data: []v1alpha1.DataFilter{d}}, "")
		parts = append(parts, fmt.Sprintf("data[%d] (%s) -> %v%s with %s", i, d.Path, ok, errSuffix(err), gjsonShow(event.Data, d.Path)))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

func gjsonShow(data []byte, path string) string {
	r := gjson.GetBytes(data, path)
	if !r.Exists() {
		return "<missing>"
	}
	return r.Raw
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

func depNamesOf(deps []v1alpha1.EventDependency) string {
	var names []string
	for _, d := range deps {
		names = append(names, d.Name)
	}
	return strings.Join(names, ", ")
}

func depNamesOfMap(m map[string]cloudevents.Event) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, "+")
}
