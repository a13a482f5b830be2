package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/Knetic/govaluate"
	"github.com/antonmedv/expr"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
)

// checkDependencyReferences reports triggers that name a dependency the
// Sensor does not declare. reconciler/sensor.ValidateSensor does not check
// this: upstream finds a bad `conditions` only when the sensor pod starts
// (the trigger is then silently never armed, only an error is logged), and a
// bad parameter `dependencyName` only when an event arrives.
func checkDependencyReferences(s *v1alpha1.Sensor) []error {
	declared := map[string]bool{}
	var names []string
	for _, dep := range s.Spec.Dependencies {
		declared[dep.Name] = true
		names = append(names, dep.Name)
	}
	sort.Strings(names)
	known := strings.Join(names, ", ")

	var errs []error
	for _, trigger := range s.Spec.Triggers {
		if trigger.Template == nil {
			continue // ValidateSensor reports it
		}
		tname := trigger.Template.Name
		if err := checkConditions(s, trigger); err != nil {
			errs = append(errs, fmt.Errorf("trigger %q: conditions %q: %w (dependencies: %s)", tname, trigger.Template.Conditions, err, known))
		}
		// Every `dependencyName` anywhere under the trigger: trigger.parameters,
		// the template's own parameters / payload (argoWorkflow, k8s, http, ...),
		// and a dlqTrigger's.
		raw, err := json.Marshal(trigger)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var tree any
		if err := json.Unmarshal(raw, &tree); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ref := range collectDependencyNames(tree, nil) {
			if !declared[ref] {
				errs = append(errs, fmt.Errorf("trigger %q: parameter dependencyName %q is not a dependency of this Sensor (dependencies: %s)", tname, ref, known))
			}
		}
	}
	return errs
}

func collectDependencyNames(node any, out []string) []string {
	switch v := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := v[k].(string); ok && k == "dependencyName" {
				out = append(out, s)
				continue
			}
			out = collectDependencyNames(v[k], out)
		}
	case []any:
		for _, e := range v {
			out = collectDependencyNames(e, out)
		}
	}
	return out
}

// checkConditions runs what the sensor runs when it starts
// (pkg/sensors/listener.go in argo-events v1.9.11, listenEvents and
// getDependencyExpression): translate the trigger's conditions with expr over
// the dependency names, then parse the result with govaluate and require
// every variable to be a declared dependency.
func checkConditions(s *v1alpha1.Sensor, trigger v1alpha1.Trigger) error {
	depExpression, err := getDependencyExpression(s, trigger)
	if err != nil {
		// expr's message goes on with the expression and a caret: keep line one.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return fmt.Errorf("failed to get dependency expression: %s", msg)
	}
	de := strings.ReplaceAll(depExpression, "-", "\\-")
	ev, err := govaluate.NewEvaluableExpression(de)
	if err != nil {
		return fmt.Errorf("failed to get new evaluable expression: %w", err)
	}
	declared := map[string]bool{}
	for _, dep := range s.Spec.Dependencies {
		declared[dep.Name] = true
	}
	for _, depName := range ev.Vars() {
		if !declared[depName] {
			return fmt.Errorf("Dependency expression and dependency list do not match, %s is not found", depName)
		}
	}
	return nil
}

// getDependencyExpression is upstream's (*SensorContext).getDependencyExpression
// (unexported, on a context that needs a running sensor), copied verbatim
// apart from the receiver and the logging.
func getDependencyExpression(sensor *v1alpha1.Sensor, trigger v1alpha1.Trigger) (string, error) {
	// Translate original expression which might contain group names
	// to an expression only contains dependency names
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
		result, err := expr.Run(program, parameters)
		if err != nil {
			return "", err
		}
		newExpr := fmt.Sprintf("%v", result)
		newExpr = strings.ReplaceAll(newExpr, "\"(\"", "(")
		newExpr = strings.ReplaceAll(newExpr, "\")\"", ")")
		return newExpr, nil
	}

	var depExpression string
	var err error
	switch {
	case trigger.Template.Conditions != "":
		conditions := trigger.Template.Conditions
		// Add all the dependency and dependency group to the parameter mappings
		depGroupMapping := make(map[string]string)
		for _, dep := range sensor.Spec.Dependencies {
			key := strings.ReplaceAll(dep.Name, "-", "_")
			depGroupMapping[key] = dep.Name
		}
		depExpression, err = translate(conditions, depGroupMapping)
		if err != nil {
			return "", err
		}
	default:
		deps := []string{}
		for _, dep := range sensor.Spec.Dependencies {
			deps = append(deps, dep.Name)
		}
		depExpression = strings.Join(deps, "&&")
	}
	return depExpression, nil
}
