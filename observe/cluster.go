package observe

import (
	"context"
	"fmt"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// TokenFile is where a GPUStack server keeps the registration token its
// workers present (facts §2: written at first start unless --token).
const TokenFile = spec.DataDir + "/token"

// TokenReader reads small files out of a container.
type TokenReader interface {
	ReadSmallFile(ctx context.Context, id, p string, limit int64) ([]byte, error)
}

// ReadToken returns the registration token in the data volume of the
// server container id. The value is a secret: callers keep it out of every
// output and compare it through spec.TokenDigest.
func ReadToken(ctx context.Context, eng TokenReader, id string) (string, error) {
	b, err := eng.ReadSmallFile(ctx, id, TokenFile, 4096)
	if err != nil {
		return "", fmt.Errorf("registration token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("registration token: %s is empty", TokenFile)
	}
	return token, nil
}

// envValue returns the value of name in a container's environment.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// observeToken records the digest of the token a worker container was
// created with, or of a server's: the one its file sets, else the one in
// its data volume.
func observeToken(ctx context.Context, eng *engine.Client, d config.Deployment, od *Deployment) {
	ct := od.Container
	if ct == nil || !ct.Managed {
		return
	}
	if d.IsWorker() {
		od.TokenDigest = spec.TokenDigest(envValue(ct.Env, spec.EnvToken))
		return
	}
	if v, ok := d.RegistrationToken(); ok {
		od.TokenDigest = spec.TokenDigest(v.S)
		return
	}
	token, err := ReadToken(ctx, eng, ct.ID)
	if err != nil {
		if !engine.IsNotFound(err) {
			od.TokenError = err.Error()
		}
		return
	}
	od.TokenDigest = spec.TokenDigest(token)
}
