package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

const (
	clusterLabel       = "fakecloud.example/cluster"
	protectionKey      = "fakecloud.example/deletion-protection"
	namespacePrefix    = "fc-"
	adminName          = "admin"
	tokenExpirySeconds = 86400
)

// Pod security: ordinary Deployments run in a cluster's namespace.
var podSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce": "baseline",
	"pod-security.kubernetes.io/audit":   "baseline",
	"pod-security.kubernetes.io/warn":    "baseline",
}

// name + "fc-" must be a DNS label (63 characters at most).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

const maxNameLength = 63 - len(namespacePrefix)

type clusterResource struct{ cloud *cloud }

type clusterModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	DiskCount   types.Int64  `tfsdk:"disk_count"`
	Labels      types.Map    `tfsdk:"labels"`
	CreateDelay types.String `tfsdk:"create_delay"`
	Namespace   types.String `tfsdk:"namespace"`
	Endpoint    types.String `tfsdk:"endpoint"`
	Disks       types.List   `tfsdk:"disks"`
	Kubeconfig  types.String `tfsdk:"kubeconfig"`
}

var (
	_ resource.ResourceWithConfigure      = (*clusterResource)(nil)
	_ resource.ResourceWithValidateConfig = (*clusterResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*clusterResource)(nil)
)

func newClusterResource() resource.Resource { return &clusterResource{} }

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

func (r *clusterResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "A cluster: a namespace fc-<name> with an admin ServiceAccount, plus " +
			"persistent disks (ConfigMaps in the disk namespace) that Delete leaves behind.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"name": schema.StringAttribute{Required: true,
				Description:   "DNS label; the cluster's namespace is fc-<name>.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"disk_count": schema.Int64Attribute{Optional: true, Computed: true,
				Default:     int64default.StaticInt64(1),
				Description: "Persistent disks to create (never deleted by the provider)."},
			"labels": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				Description: "Labels of the namespace and of the disks."},
			"create_delay": schema.StringAttribute{Optional: true,
				Description: `Go duration ("20s") to sleep before creating anything.`},
			"namespace":  schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"endpoint":   schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"disks":      schema.ListAttribute{Computed: true, ElementType: types.StringType},
			"kubeconfig": schema.StringAttribute{Computed: true, Sensitive: true, PlanModifiers: keep},
		},
	}
}

func (r *clusterResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if req.ProviderData != nil {
		r.cloud = req.ProviderData.(*cloud)
	}
}

func (r *clusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !cfg.Name.IsNull() && !cfg.Name.IsUnknown() {
		name := cfg.Name.ValueString()
		if !dnsLabel.MatchString(name) || len(name) > maxNameLength {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Invalid cluster name",
				fmt.Sprintf("%q must be a DNS label (lower-case letters, digits and '-') of at most %d characters", name, maxNameLength))
		}
	}
	if !cfg.DiskCount.IsNull() && !cfg.DiskCount.IsUnknown() && cfg.DiskCount.ValueInt64() < 0 {
		resp.Diagnostics.AddAttributeError(path.Root("disk_count"), "Invalid disk_count", "disk_count must not be negative")
	}
	if !cfg.CreateDelay.IsNull() && !cfg.CreateDelay.IsUnknown() && cfg.CreateDelay.ValueString() != "" {
		if d, err := time.ParseDuration(cfg.CreateDelay.ValueString()); err != nil || d < 0 {
			resp.Diagnostics.AddAttributeError(path.Root("create_delay"), "Invalid create_delay",
				fmt.Sprintf("%q is not a non-negative Go duration such as \"20s\"", cfg.CreateDelay.ValueString()))
		}
	}
}

// ModifyPlan makes the derived attributes known at plan time.
func (r *clusterResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Name.IsUnknown() {
		return
	}
	name := plan.Name.ValueString()
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"), name)...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("namespace"), namespacePrefix+name)...)
	if r.cloud != nil {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("endpoint"), r.cloud.host)...)
	}
	if !plan.DiskCount.IsUnknown() {
		disks, d := types.ListValueFrom(ctx, types.StringType, diskNames(name, plan.DiskCount.ValueInt64()))
		resp.Diagnostics.Append(d...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("disks"), disks)...)
	}
}

func diskNames(name string, count int64) []string {
	names := make([]string, 0, count)
	for i := int64(0); i < count; i++ {
		names = append(names, fmt.Sprintf("%s-disk-%d", name, i))
	}
	return names
}

func (r *clusterResource) configured(diags interface{ AddError(string, string) }) bool {
	if r.cloud == nil || r.cloud.kube == nil {
		diags.AddError("Fake cloud provider not configured",
			"The provider has no host: set host or FAKECLOUD_HOST.")
		return false
	}
	return true
}

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	name := plan.Name.ValueString()
	summary := fmt.Sprintf("Cannot create fake cloud cluster %q", name)
	if s := plan.CreateDelay.ValueString(); s != "" {
		delay, _ := time.ParseDuration(s) // checked by ValidateConfig
		timer := time.NewTimer(delay)
		// A test that interrupts the create waits for this file: a stop that reaches the
		// provider before the create's request has started cancels nothing (the plugin server
		// cancels only the requests in flight), so the test must know the request is in flight.
		if marker := os.Getenv("FAKECLOUD_DELAY_STARTED_FILE"); marker != "" {
			_ = os.WriteFile(marker, []byte(name+"\n"), 0o600)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			resp.Diagnostics.AddError(summary, fmt.Sprintf("cancelled during create_delay %s: %v", s, ctx.Err()))
			return
		}
	}
	labels := map[string]string{}
	resp.Diagnostics.Append(plan.Labels.ElementsAs(ctx, &labels, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns := namespacePrefix + name
	k := r.cloud.kube
	if err := r.ensureNamespace(ctx, ns, name, namespaceLabels(name, labels)); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	owned := map[string]string{clusterLabel: name}
	if err := createOrExists(ctx, k, "/api/v1/namespaces/"+ns+"/serviceaccounts", map[string]any{
		"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"name": adminName, "labels": owned},
	}); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	if err := createOrExists(ctx, k, "/apis/rbac.authorization.k8s.io/v1/namespaces/"+ns+"/rolebindings", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": adminName, "labels": owned},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": adminName, "namespace": ns}},
	}); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	var token struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if err := k.do(ctx, http.MethodPost, "/api/v1/namespaces/"+ns+"/serviceaccounts/"+adminName+"/token", map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"expirationSeconds": tokenExpirySeconds},
	}, &token); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	disks := diskNames(name, plan.DiskCount.ValueInt64())
	if err := r.ensureDisks(ctx, name, ns, disks, labels); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	plan.ID = types.StringValue(name)
	plan.Namespace = types.StringValue(ns)
	plan.Endpoint = types.StringValue(r.cloud.host)
	plan.Kubeconfig = types.StringValue(r.kubeconfig(name, ns, token.Status.Token))
	list, d := types.ListValueFrom(ctx, types.StringType, disks)
	resp.Diagnostics.Append(d...)
	plan.Disks = list
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func namespaceLabels(name string, labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	for k, v := range podSecurityLabels {
		out[k] = v
	}
	out[clusterLabel] = name
	return out
}

func createOrExists(ctx context.Context, k *kube, collection string, body any) error {
	err := k.do(ctx, http.MethodPost, collection, body, nil)
	if alreadyExists(err) {
		return nil
	}
	return err
}

// ensureNamespace creates the cluster's namespace, or takes over the one a partial apply of
// the same cluster left (setting its labels); refuses one that is being deleted or that
// belongs to something else.
func (r *clusterResource) ensureNamespace(ctx context.Context, ns, name string, labels map[string]string) error {
	k := r.cloud.kube
	err := k.do(ctx, http.MethodPost, "/api/v1/namespaces", map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": ns, "labels": labels},
	}, nil)
	if !alreadyExists(err) {
		return err
	}
	var existing object
	if err := k.do(ctx, http.MethodGet, "/api/v1/namespaces/"+ns, nil, &existing); err != nil {
		return err
	}
	if existing.Metadata.DeletionTimestamp != nil {
		return fmt.Errorf("namespace %s is being deleted (since %s); the cluster %q can be created again once it is gone",
			ns, *existing.Metadata.DeletionTimestamp, name)
	}
	if owner := existing.Metadata.Labels[clusterLabel]; owner != name {
		return fmt.Errorf("namespace %s exists and is not the fake cloud cluster %q's (label %s=%q)",
			ns, name, clusterLabel, owner)
	}
	return k.do(ctx, http.MethodPatch, "/api/v1/namespaces/"+ns,
		map[string]any{"metadata": map[string]any{"labels": labels}}, nil)
}

func (r *clusterResource) ensureDisks(ctx context.Context, name, ns string, disks []string, labels map[string]string) error {
	diskLabels := map[string]string{}
	for k, v := range labels {
		diskLabels[k] = v
	}
	diskLabels[clusterLabel] = name
	for i, disk := range disks {
		if err := createOrExists(ctx, r.cloud.kube, "/api/v1/namespaces/"+r.cloud.diskNamespace+"/configmaps", map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": disk, "labels": diskLabels},
			"data":     map[string]string{"cluster": name, "namespace": ns, "index": fmt.Sprint(i)},
		}); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfig for the cluster's admin ServiceAccount (JSON strings are YAML scalars).
func (r *clusterResource) kubeconfig(name, ns, token string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var tlsLine string
	switch {
	case r.cloud.insecure:
		tlsLine = "    insecure-skip-tls-verify: true\n"
	case r.cloud.caPEM != "":
		tlsLine = "    certificate-authority-data: " + base64.StdEncoding.EncodeToString([]byte(r.cloud.caPEM)) + "\n"
	}
	ctxName := "fakecloud-" + name
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n")
	b.WriteString("- name: " + q(ctxName) + "\n  cluster:\n    server: " + q(r.cloud.host) + "\n" + tlsLine)
	b.WriteString("users:\n- name: " + q(ctxName+"-admin") + "\n  user:\n    token: " + q(token) + "\n")
	b.WriteString("contexts:\n- name: " + q(ctxName) + "\n  context:\n    cluster: " + q(ctxName) +
		"\n    user: " + q(ctxName+"-admin") + "\n    namespace: " + q(ns) + "\n")
	b.WriteString("current-context: " + q(ctxName) + "\n")
	return b.String()
}

func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	ns := namespacePrefix + state.Name.ValueString()
	var existing object
	err := r.cloud.kube.do(ctx, http.MethodGet, "/api/v1/namespaces/"+ns, nil, &existing)
	if isStatus(err, http.StatusNotFound) || (err == nil && existing.Metadata.DeletionTimestamp != nil) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read fake cloud cluster %q", state.Name.ValueString()), err.Error())
		return
	}
	state.Namespace = types.StringValue(ns)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update: new labels on the namespace, missing disks created (disks are never deleted).
func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	name := plan.Name.ValueString()
	summary := fmt.Sprintf("Cannot update fake cloud cluster %q", name)
	labels, old := map[string]string{}, map[string]string{}
	resp.Diagnostics.Append(plan.Labels.ElementsAs(ctx, &labels, false)...)
	resp.Diagnostics.Append(state.Labels.ElementsAs(ctx, &old, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns := namespacePrefix + name
	patch := map[string]any{}
	for k := range old {
		patch[k] = nil
	}
	for k, v := range namespaceLabels(name, labels) {
		patch[k] = v
	}
	if err := r.cloud.kube.do(ctx, http.MethodPatch, "/api/v1/namespaces/"+ns,
		map[string]any{"metadata": map[string]any{"labels": patch}}, nil); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	disks := diskNames(name, plan.DiskCount.ValueInt64())
	if err := r.ensureDisks(ctx, name, ns, disks, labels); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	plan.ID = types.StringValue(name)
	plan.Namespace = types.StringValue(ns)
	plan.Endpoint = types.StringValue(r.cloud.host)
	plan.Kubeconfig = state.Kubeconfig
	list, d := types.ListValueFrom(ctx, types.StringType, disks)
	resp.Diagnostics.Append(d...)
	plan.Disks = list
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete removes the namespace (not the disks) and does not wait for it to be gone.
func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	name := state.Name.ValueString()
	summary := fmt.Sprintf("Cannot delete fake cloud cluster %q", name)
	ns := namespacePrefix + name
	k := r.cloud.kube
	var existing object
	err := k.do(ctx, http.MethodGet, "/api/v1/namespaces/"+ns, nil, &existing)
	if isStatus(err, http.StatusNotFound) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	if existing.Metadata.Annotations[protectionKey] == "true" {
		resp.Diagnostics.AddError(summary, fmt.Sprintf(
			"the cluster %q is protected from deletion: its namespace %s has the annotation %s: \"true\". "+
				"Remove the annotation (kubectl annotate namespace %s %s-) and destroy again.",
			name, ns, protectionKey, ns, protectionKey))
		return
	}
	if existing.Metadata.DeletionTimestamp != nil {
		return
	}
	err = k.do(ctx, http.MethodDelete, "/api/v1/namespaces/"+ns, nil, nil)
	if err != nil && !isStatus(err, http.StatusNotFound) {
		resp.Diagnostics.AddError(summary, err.Error())
	}
}
