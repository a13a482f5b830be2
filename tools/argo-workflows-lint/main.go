// Command argo-workflows-lint validates Argo Workflows manifests with Argo's
// own code: exactly the path behind `argo lint --offline` (strict mode).
//
//	argo-workflows-lint PATH...
//
// Every Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow
// found in PATH (files, or folders walked recursively for *.yaml, *.yml and
// *.json; multi-document YAML allowed) is strictly decoded and validated.
// templateRef / workflowTemplateRef resolve against every WorkflowTemplate and
// ClusterWorkflowTemplate in all the given paths, as the offline lint does.
// Documents of other kinds are ignored.
//
// Output: one line per problem on stdout, "FILE: Kind/name: message".
// Exit status: 0 all valid, 1 any problem, 2 usage error (no paths, a path
// that cannot be read).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-workflows/v4/cmd/argo/lint"
	"github.com/argoproj/argo-workflows/v4/pkg/apiclient"
	fileutil "github.com/argoproj/argo-workflows/v4/util/file"
	"github.com/argoproj/argo-workflows/v4/util/logging"
	"github.com/argoproj/argo-workflows/v4/workflow/common"
)

const tool = "argo-workflows-lint"

// The same document separator upstream's common.ParseObjects splits on.
var yamlSeparator = regexp.MustCompile(`\n---`)

// lint.lintData wraps each error as `in "NAME" (KIND): ...` (see getObjectName).
var objPrefix = regexp.MustCompile(`^in "(.*)" \(([A-Za-z]+)\): $`)

type problem struct{ file, kind, name, msg string }

func (p problem) String() string {
	msg := strings.ReplaceAll(strings.TrimSpace(p.msg), "\n", " ")
	return fmt.Sprintf("%s: %s/%s: %s", p.file, p.kind, p.name, msg)
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
		if _, err := os.Stat(p); err != nil {
			usage("%v", err)
		}
	}

	level := logging.Error
	if os.Getenv("ARGO_LINT_DEBUG") != "" {
		level = logging.Debug
	}
	ctx := logging.WithLogger(context.Background(), logging.NewSlogLogger(level, logging.Text))

	var problems []problem

	// 1. Read every manifest once. Upstream silently skips documents that are
	// not valid YAML (common.ParseObjects only logs them) and lintData skips
	// documents it cannot turn into an object at all; we report both. Files
	// that upstream's lenient parse rejects would make the offline client
	// fail as a whole, so they are kept out of the template index (lint below
	// still reports their errors, per object).
	var files, indexFiles []string
	seen := map[string]bool{}
	for _, root := range paths {
		err := fileutil.WalkManifests(ctx, root, func(path string, data []byte) error {
			// A file reached twice (a folder and a file in it) is linted once;
			// upstream would index it twice and fail on "duplicate WorkflowTemplate".
			if seen[filepath.Clean(path)] {
				return nil
			}
			seen[filepath.Clean(path)] = true
			files = append(files, path)
			for i, text := range yamlSeparator.Split(string(data), -1) {
				if strings.TrimSpace(text) == "" {
					continue
				}
				var v any
				if err := yaml.Unmarshal([]byte(text), &v); err != nil {
					problems = append(problems, problem{path, "?", fmt.Sprintf("document#%d", i+1), "invalid YAML: " + err.Error()})
				}
			}
			for _, pr := range common.ParseObjects(ctx, data, true) {
				if pr.Object == nil && pr.Err != nil {
					problems = append(problems, problem{path, "?", "?", pr.Err.Error()})
				}
			}
			ok := true
			for _, pr := range common.ParseObjects(ctx, data, false) {
				if pr.Err != nil {
					ok = false
				}
			}
			if ok {
				indexFiles = append(indexFiles, path)
			}
			return nil
		})
		if err != nil {
			usage("%v", err)
		}
	}

	// 2. The offline client of `argo lint --offline`: an in-memory index of
	// all WorkflowTemplates / ClusterWorkflowTemplates for templateRef.
	ctx, client, err := apiclient.NewClientFromOptsWithContext(ctx, apiclient.Opts{Offline: true, OfflineFiles: indexFiles})
	if err != nil {
		// e.g. duplicate WorkflowTemplate names across the given files.
		fmt.Println(problem{strings.Join(paths, ","), "?", "?", err.Error()})
		os.Exit(1)
	}
	clients := lint.ServiceClients{WorkflowsClient: client.NewWorkflowServiceClient(ctx)}
	if clients.WorkflowTemplatesClient, err = client.NewWorkflowTemplateServiceClient(); err != nil {
		usage("%v", err)
	}
	if clients.CronWorkflowsClient, err = client.NewCronWorkflowServiceClient(); err != nil {
		usage("%v", err)
	}
	if clients.ClusterWorkflowTemplateClient, err = client.NewClusterWorkflowTemplateServiceClient(); err != nil {
		usage("%v", err)
	}

	// 3. Upstream's lint: strict decoding + validate.Validate* per object.
	// DefaultNamespace "" is what the CLI uses in offline mode.
	res, err := lint.Lint(ctx, &lint.Options{
		Files:            files,
		Strict:           true,
		DefaultNamespace: "",
		ServiceClients:   clients,
	})
	if err != nil {
		usage("%v", err)
	}
	linted := 0
	for _, r := range res.Results {
		if r.Linted {
			linted++
		}
		for _, e := range r.Errs {
			problems = append(problems, toProblem(r.File, e))
		}
	}

	for _, p := range problems {
		fmt.Println(p)
	}
	fmt.Fprintf(os.Stderr, "%s: %d file(s) with Argo Workflows objects, %d problem(s)\n", tool, linted, len(problems))
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func toProblem(file string, err error) problem {
	full := err.Error()
	if inner := errors.Unwrap(err); inner != nil && strings.HasSuffix(full, inner.Error()) {
		if m := objPrefix.FindStringSubmatch(strings.TrimSuffix(full, inner.Error())); m != nil {
			return problem{file, m[2], m[1], inner.Error()}
		}
	}
	return problem{file, "?", "?", full}
}
