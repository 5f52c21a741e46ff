package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

func TestTargetFlag(t *testing.T) {
	desired := &config.Desired{Deployments: []config.Deployment{
		{Name: "a", Host: "default"}, {Name: "b", Host: "gpu1"}, {Name: "c", Host: "gpu2"},
	}}
	l := &loaded{desired: desired}
	tf := targetFlag{names: []string{"c", "a"}}
	if err := tf.apply(l); err != nil {
		t.Fatal(err)
	}
	if len(l.desired.Deployments) != 2 || l.desired.Deployments[0].Name != "a" || l.desired.Deployments[1].Name != "c" {
		t.Errorf("--target c --target a kept %+v", l.desired.Deployments)
	}
	if len(desired.Deployments) != 3 {
		t.Error("--target changed the loaded configuration in place")
	}
	err := (&targetFlag{names: []string{"nosuch"}}).apply(&loaded{desired: desired})
	if err == nil || !strings.Contains(err.Error(), "--target nosuch") || !strings.Contains(err.Error(), "a, b, c") {
		t.Errorf("unknown target: %v", err)
	}

	only := (&loaded{desired: desired}).onHosts(observe.Engines{"gpu1": nil, "gpu2": nil})
	if len(only.desired.Deployments) != 0 {
		t.Errorf("onHosts kept deployments of hosts without a client: %+v", only.desired.Deployments)
	}

	f := hostFailures{"z": errors.New("docker host z down"), "a": errors.New("docker host a down")}
	if got := f.err().Error(); got != "docker host a down\ndocker host z down" {
		t.Errorf("hostFailures.err() = %q", got)
	}
}
