package observe

import (
	"context"
	"fmt"
	"strings"

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
// created with, or of the token in a server's data volume.
func observeToken(ctx context.Context, eng *engine.Client, worker bool, od *Deployment) {
	ct := od.Container
	if ct == nil || !ct.Managed {
		return
	}
	if worker {
		od.TokenDigest = spec.TokenDigest(envValue(ct.Env, spec.EnvToken))
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
