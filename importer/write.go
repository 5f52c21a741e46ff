package importer

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// draft is the content of the file, before it is written.
type draft struct {
	name, containerName     string
	image, version, variant string
	policy                  string // allow_dev, allow_prerelease or allow_floating; "" for a release
	port, containerPort     int
	listen                  string
	hostNetwork             bool
	args                    []word
	env                     map[string]word
	labels                  map[string]string
	restart                 string
	gpus                    config.GPUs
	runtime, ipc            string
	privileged              bool
	shm                     int64
	devices                 []config.Device
	// databaseURL is the variable holding --database-url or
	// GPUSTACK_DATABASE_URL, written as database_url.
	databaseURL string
	data        volumeDecl
	cache       *volumeDecl
	mounts      []mountDecl
	noCache     string // why no cache volume is declared
}

var identRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]*$`)

// render writes the file with hclwrite and formats it.
func (dr *draft) render(res *Result) []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	comment(root, fmt.Sprintf("Written by gpustack-deploy import from container %q.", dr.containerName))
	if len(res.Secrets) > 0 {
		comment(root, "The file holds no secret: supply each sensitive variable with --var name=value or GPUSTACK_DEPLOY_VAR_<name>.")
	}
	if len(res.Unexpressed) > 0 {
		comment(root, "The container has settings this file cannot express; the next plan replaces it without them:")
		for _, u := range res.Unexpressed {
			comment(root, "  - "+u)
		}
	}
	root.AppendNewline()
	for _, name := range sortedKeys(res.Secrets) {
		v := root.AppendNewBlock("variable", []string{name}).Body()
		v.SetAttributeValue("description", cty.StringVal(res.SecretSources[name]+" of container "+dr.containerName))
		v.SetAttributeValue("sensitive", cty.True)
		root.AppendNewline()
	}

	b := root.AppendNewBlock("gpustack", []string{dr.name}).Body()
	str := func(name, value string) { b.SetAttributeValue(name, cty.StringVal(value)) }
	str("version", dr.version)
	if dr.variant != "" {
		str("variant", dr.variant)
	}
	if dr.image != config.DefaultImage {
		str("image", dr.image)
	}
	str("container_name", dr.containerName)
	if dr.hostNetwork {
		str("network_mode", config.NetworkHost)
	} else if dr.port != 0 {
		b.SetAttributeValue("port", cty.NumberIntVal(int64(dr.port)))
	}
	if dr.containerPort != config.DefaultPort {
		b.SetAttributeValue("container_port", cty.NumberIntVal(int64(dr.containerPort)))
	}
	if dr.listen != "" {
		str("listen_address", dr.listen)
	}
	if len(dr.args) > 0 {
		elems := make([]hclwrite.Tokens, len(dr.args))
		for i, w := range dr.args {
			elems[i] = w.tokens()
		}
		b.SetAttributeRaw("args", hclwrite.TokensForTuple(elems))
	}
	if len(dr.env) > 0 {
		var items []hclwrite.ObjectAttrTokens
		for _, k := range sortedKeys(dr.env) {
			items = append(items, hclwrite.ObjectAttrTokens{Name: keyTokens(k), Value: dr.env[k].tokens()})
		}
		b.SetAttributeRaw("env", hclwrite.TokensForObject(items))
	}
	if dr.databaseURL != "" {
		b.SetAttributeRaw("database_url", word{variable: dr.databaseURL}.tokens())
	}
	if len(dr.labels) > 0 {
		var items []hclwrite.ObjectAttrTokens
		for _, k := range sortedKeys(dr.labels) {
			items = append(items, hclwrite.ObjectAttrTokens{Name: keyTokens(k), Value: hclwrite.TokensForValue(cty.StringVal(dr.labels[k]))})
		}
		b.SetAttributeRaw("labels", hclwrite.TokensForObject(items))
	}
	if dr.restart != config.DefaultRestart {
		str("restart", dr.restart)
	}
	dr.renderEngineOptions(b)
	dr.renderVolumes(b)
	if dr.policy != "" {
		b.AppendNewline()
		comment(b, "The tag moves: pin a release (version = \"v…\") and remove this policy before the next upgrade.")
		b.AppendNewBlock("policy", nil).Body().SetAttributeValue(dr.policy, cty.True)
	}
	return hclwrite.Format(f.Bytes())
}

func (dr *draft) renderEngineOptions(b *hclwrite.Body) {
	switch g := dr.gpus; {
	case g.All:
		b.SetAttributeValue("gpus", cty.StringVal("all"))
	case g.Count > 0:
		b.SetAttributeValue("gpus", cty.NumberIntVal(int64(g.Count)))
	case len(g.IDs) > 0:
		ids := make([]cty.Value, len(g.IDs))
		for i, id := range g.IDs {
			ids[i] = cty.StringVal(id)
		}
		b.SetAttributeValue("gpus", cty.TupleVal(ids))
	}
	if dr.runtime != "" {
		b.SetAttributeValue("runtime", cty.StringVal(dr.runtime))
	}
	if dr.privileged {
		b.SetAttributeValue("privileged", cty.True)
	}
	if dr.ipc != "" {
		b.SetAttributeValue("ipc_mode", cty.StringVal(dr.ipc))
	}
	if dr.shm != 0 {
		b.SetAttributeValue("shm_size", cty.StringVal(sizeText(dr.shm)))
	}
	if len(dr.devices) > 0 {
		devs := make([]cty.Value, len(dr.devices))
		for i, d := range dr.devices {
			devs[i] = cty.StringVal(deviceText(d))
		}
		b.SetAttributeValue("devices", cty.TupleVal(devs))
	}
}

func (dr *draft) renderVolumes(b *hclwrite.Body) {
	b.AppendNewline()
	volume(b, "data", dr.data)
	if dr.noCache != "" {
		comment(b, "No cache volume: "+dr.noCache+".")
	}
	if c := dr.cache; c != nil {
		if c.isNew {
			comment(b, "New: the container keeps the model cache inside the data volume. The next plan copies it")
			comment(b, "into this volume (checked file by file) and replaces the container to mount it here.")
		}
		volume(b, "cache", *c)
	}
	for _, m := range dr.mounts {
		mb := b.AppendNewBlock("mount", []string{m.label}).Body()
		mb.SetAttributeValue("source", cty.StringVal(m.source))
		mb.SetAttributeValue("target", cty.StringVal(m.target))
		if m.readOnly {
			mb.SetAttributeValue("read_only", cty.True)
		}
	}
}

func volume(b *hclwrite.Body, kind string, v volumeDecl) {
	vb := b.AppendNewBlock("volume", []string{kind}).Body()
	if v.name != "" {
		vb.SetAttributeValue("name", cty.StringVal(v.name))
	} else {
		vb.SetAttributeValue("host_path", cty.StringVal(v.hostPath))
	}
	if v.path != "" {
		vb.SetAttributeValue("path", cty.StringVal(v.path))
	}
}

func comment(b *hclwrite.Body, text string) {
	b.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# " + text + "\n")}})
}

// tokens writes a word: a quoted literal, var.<name>, or a template
// "<prefix>${var.<name>}".
func (w word) tokens() hclwrite.Tokens {
	if w.variable == "" {
		return hclwrite.TokensForValue(cty.StringVal(w.lit))
	}
	ref := hcl.Traversal{hcl.TraverseRoot{Name: "var"}, hcl.TraverseAttr{Name: w.variable}}
	if w.prefix == "" {
		return hclwrite.TokensForTraversal(ref)
	}
	// The literal part is escaped as TokensForValue escapes a string
	// ("${" becomes "$${"), without its quotes.
	lit := hclwrite.TokensForValue(cty.StringVal(w.prefix))
	out := hclwrite.Tokens{{Type: hclsyntax.TokenOQuote, Bytes: []byte(`"`)}}
	out = append(out, lit[1:len(lit)-1]...)
	out = append(out, &hclwrite.Token{Type: hclsyntax.TokenTemplateInterp, Bytes: []byte("${")})
	out = append(out, hclwrite.TokensForTraversal(ref)...)
	out = append(out, &hclwrite.Token{Type: hclsyntax.TokenTemplateSeqEnd, Bytes: []byte("}")},
		&hclwrite.Token{Type: hclsyntax.TokenCQuote, Bytes: []byte(`"`)})
	return out
}

// keyTokens writes a map key bare when it is an identifier, else quoted.
func keyTokens(k string) hclwrite.Tokens {
	if identRe.MatchString(k) {
		return hclwrite.TokensForIdentifier(k)
	}
	return hclwrite.TokensForValue(cty.StringVal(k))
}

// sizeText writes a byte count the way shm_size reads it back exactly.
func sizeText(n int64) string {
	for _, u := range []struct {
		size int64
		unit string
	}{{1 << 30, "g"}, {1 << 20, "m"}, {1 << 10, "k"}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.unit)
		}
	}
	return fmt.Sprint(n)
}

// deviceText writes a device as short as docker run --device takes it.
func deviceText(d config.Device) string {
	switch {
	case d.CgroupPermissions == "rwm" && d.PathInContainer == d.PathOnHost:
		return d.PathOnHost
	case d.CgroupPermissions == "rwm":
		return d.PathOnHost + ":" + d.PathInContainer
	}
	return strings.Join([]string{d.PathOnHost, d.PathInContainer, d.CgroupPermissions}, ":")
}
