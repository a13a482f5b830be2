package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// kube is a minimal client of the Kubernetes REST API (bearer token, JSON bodies).
type kube struct {
	host  string
	token string
	http  *http.Client
}

// apiError is a non-2xx answer; its text names the method, path, status and the server's
// message, which every diagnostic of the provider shows.
type apiError struct {
	Method, Path string
	Status       int
	Reason       string
	Message      string
}

func (e *apiError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: HTTP %d %s: %s", e.Method, e.Path, e.Status, reason, e.Message)
}

func isStatus(err error, status int) bool {
	e, ok := err.(*apiError)
	return ok && e.Status == status
}

// alreadyExists: the object is there (409 AlreadyExists, not any other conflict).
func alreadyExists(err error) bool {
	e, ok := err.(*apiError)
	return ok && e.Status == http.StatusConflict && e.Reason == "AlreadyExists"
}

func newKube(host, token, caPEM string, insecure bool) (*kube, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		tlsConfig.InsecureSkipVerify = true
	} else if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, fmt.Errorf("ca_cert holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &kube{
		host:  strings.TrimRight(host, "/"),
		token: token,
		http:  &http.Client{Transport: transport, Timeout: 60 * time.Second},
	}, nil
}

// do sends one request; body (if not nil) is sent as JSON (or as a merge patch for PATCH),
// the answer is decoded into out (if not nil).
func (k *kube) do(ctx context.Context, method, path string, body, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.host+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var status struct{ Reason, Message string }
		if json.Unmarshal(data, &status) == nil && status.Message != "" {
			e.Reason, e.Message = status.Reason, status.Message
		} else {
			e.Message = strings.TrimSpace(string(data))
		}
		return e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// object is the part of a Kubernetes object's metadata the provider reads.
type object struct {
	Metadata struct {
		Name              string            `json:"name"`
		Labels            map[string]string `json:"labels"`
		Annotations       map[string]string `json:"annotations"`
		DeletionTimestamp *string           `json:"deletionTimestamp"`
	} `json:"metadata"`
}
