package main

import (
	"context"
	"os"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

const defaultDiskNamespace = "fakecloud-disks"

type fakecloudProvider struct{}

// cloud is what resources get from Configure.
type cloud struct {
	kube          *kube
	host          string
	token         string
	caPEM         string
	insecure      bool
	diskNamespace string
}

type providerModel struct {
	Host          types.String `tfsdk:"host"`
	Token         types.String `tfsdk:"token"`
	CACert        types.String `tfsdk:"ca_cert"`
	Insecure      types.Bool   `tfsdk:"insecure"`
	DiskNamespace types.String `tfsdk:"disk_namespace"`
}

func newProvider() provider.Provider { return &fakecloudProvider{} }

func (p *fakecloudProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "fakecloud"
	resp.Version = version
}

func (p *fakecloudProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A fake cloud whose clusters are namespaces of a Kubernetes cluster.",
		Attributes: map[string]schema.Attribute{
			"host": schema.StringAttribute{Optional: true,
				Description: "URL of the Kubernetes API server (env FAKECLOUD_HOST)."},
			"token": schema.StringAttribute{Optional: true, Sensitive: true,
				Description: "Bearer token of the cloud's credentials (env FAKECLOUD_TOKEN)."},
			"ca_cert": schema.StringAttribute{Optional: true,
				Description: "PEM CA certificate of the API server (env FAKECLOUD_CA_CERT)."},
			"insecure": schema.BoolAttribute{Optional: true,
				Description: "Skip TLS verification (env FAKECLOUD_INSECURE)."},
			"disk_namespace": schema.StringAttribute{Optional: true,
				Description: "Namespace of the persistent disks (env FAKECLOUD_DISK_NAMESPACE, " +
					"default " + defaultDiskNamespace + ")."},
		},
	}
}

func stringOrEnv(v types.String, env, fallback string) string {
	if !v.IsNull() && !v.IsUnknown() && v.ValueString() != "" {
		return v.ValueString()
	}
	if s := os.Getenv(env); s != "" {
		return s
	}
	return fallback
}

func (p *fakecloudProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := &cloud{
		host:          stringOrEnv(cfg.Host, "FAKECLOUD_HOST", ""),
		token:         stringOrEnv(cfg.Token, "FAKECLOUD_TOKEN", ""),
		caPEM:         stringOrEnv(cfg.CACert, "FAKECLOUD_CA_CERT", ""),
		diskNamespace: stringOrEnv(cfg.DiskNamespace, "FAKECLOUD_DISK_NAMESPACE", defaultDiskNamespace),
	}
	if !cfg.Insecure.IsNull() && !cfg.Insecure.IsUnknown() {
		c.insecure = cfg.Insecure.ValueBool()
	} else if s := os.Getenv("FAKECLOUD_INSECURE"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			resp.Diagnostics.AddError("Invalid FAKECLOUD_INSECURE", "FAKECLOUD_INSECURE="+s+": "+err.Error())
			return
		}
		c.insecure = b
	}
	if c.host == "" {
		if cfg.Host.IsUnknown() {
			return // known at apply time; resources say so if they are used before
		}
		resp.Diagnostics.AddError("No fake cloud host",
			"Set the provider's host argument or FAKECLOUD_HOST to the Kubernetes API server's URL.")
		return
	}
	k, err := newKube(c.host, c.token, c.caPEM, c.insecure)
	if err != nil {
		resp.Diagnostics.AddError("Invalid fake cloud TLS configuration", err.Error())
		return
	}
	c.kube = k
	resp.ResourceData = c
	resp.DataSourceData = c
}

func (p *fakecloudProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newClusterResource}
}

func (p *fakecloudProvider) DataSources(context.Context) []func() datasource.DataSource {
	return nil
}
