package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources/events"
)

// resourcePayload is the --payload of --type resource: what the EventSource's
// informer hands its event handler (pkg/eventsources/sources/resource/start.go,
// InformerEvent: Type, Obj, OldObj).
type resourcePayload struct {
	Type    v1alpha1.ResourceEventType `json:"type"`
	Body    json.RawMessage            `json:"body"`
	OldBody json.RawMessage            `json:"oldBody"`
}

// droppedError: the EventSource publishes nothing for this input (as upstream
// does for it); main exits as when no trigger fires.
type droppedError struct{ reason string }

func (d droppedError) Error() string { return d.reason }

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// informerObject decodes an object the way the dynamic informer holds it
// (*unstructured.Unstructured; its decoder requires apiVersion and kind, which
// every object from the API server has).
func informerObject(field string, raw json.RawMessage) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%s is not a Kubernetes object: %w", field, err)
	}
	return u, nil
}

// resourceEventData builds the event data of the resource EventSource:
// StartListening's event handlers (AddFunc, UpdateFunc, DeleteFunc) and
// processOne (pkg/eventsources/sources/resource/start.go; both are closures
// over the informer, so their bodies are repeated here). The EventSource's own
// filter (spec.resource.filter: prefix, labels, fields, afterStart, createdBy)
// is not applied: the event is one that passed it.
func resourceEventData(o options) ([]byte, error) {
	raw, err := os.ReadFile(o.payloadPath)
	if err != nil {
		return nil, err
	}
	var p resourcePayload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: not a resource event {\"type\", \"body\", \"oldBody\"}: %w", o.payloadPath, err)
	}
	if isAbsent(p.Body) {
		return nil, fmt.Errorf("%s: body is required", o.payloadPath)
	}
	obj, err := informerObject("body", p.Body)
	if err != nil {
		return nil, err
	}

	// The handler of each event type builds the InformerEvent.
	var eventObj, eventOldObj interface{}
	eventObj = obj
	switch p.Type {
	case v1alpha1.ADD, v1alpha1.DELETE:
		// AddFunc / DeleteFunc: InformerEvent{Obj: obj, Type: ...}, no OldObj.
		// (A DeleteFunc that receives a cache.DeletedFinalStateUnknown tombstone
		// is not simulated.)
		if !isAbsent(p.OldBody) {
			return nil, fmt.Errorf("%s: oldBody is only set for UPDATE events (upstream's %s handler has no old object)", o.payloadPath, p.Type)
		}
	case v1alpha1.UPDATE:
		if isAbsent(p.OldBody) {
			return nil, fmt.Errorf("%s: an UPDATE event needs oldBody (the informer always passes the old object)", o.payloadPath)
		}
		old, err := informerObject("oldBody", p.OldBody)
		if err != nil {
			return nil, err
		}
		// UpdateFunc: updates that do not change the resourceVersion (informer
		// resyncs) are dropped.
		if obj.GetResourceVersion() == old.GetResourceVersion() {
			return nil, droppedError{fmt.Sprintf("the EventSource drops this UPDATE: body and oldBody have the same metadata.resourceVersion %q (upstream: \"rejecting update event with identical resource versions\")", obj.GetResourceVersion())}
		}
		eventOldObj = old
	default:
		return nil, fmt.Errorf("%s: type %q is not ADD, UPDATE or DELETE", o.payloadPath, p.Type)
	}

	// processOne
	objBody, err := json.Marshal(eventObj)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal the resource, rejecting the event, %w", err)
	}
	var oldObjBody []byte
	if eventOldObj != nil {
		oldObjBody, err = json.Marshal(eventOldObj)
		if err != nil {
			return nil, fmt.Errorf("failed to marshal the resource, rejecting the event, %w", err)
		}
	}
	// OldBody points at a nil RawMessage when there is no old object, so it is
	// marshalled as JSON null ("oldBody":null), never omitted.
	eventData := &events.ResourceEventData{
		EventType: string(p.Type),
		Body:      (*json.RawMessage)(&objBody),
		OldBody:   (*json.RawMessage)(&oldObjBody),
		Group:     o.group,
		Version:   o.version,
		Resource:  o.resource,
		Metadata:  o.metadata,
	}
	return json.Marshal(eventData)
}
