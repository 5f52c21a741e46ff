package config

import "testing"

func TestRegistrationToken(t *testing.T) {
	secret := func(s string) Value { return Value{S: s, Sensitive: true} }
	tests := []struct {
		name string
		d    Deployment
		want string
	}{
		{"none", Deployment{Args: []Value{{S: "--debug"}}}, ""},
		{"--token VALUE", Deployment{Args: []Value{{S: "--token"}, secret("t1")}}, "t1"},
		{"-t VALUE", Deployment{Args: []Value{{S: "-t"}, secret("t2")}}, "t2"},
		{"--token=VALUE", Deployment{Args: []Value{secret("--token=t3")}}, "t3"},
		{"env", Deployment{Env: map[string]Value{"GPUSTACK_TOKEN": secret("t4")}}, "t4"},
		{"args before env", Deployment{Args: []Value{{S: "--token"}, secret("t5")}, Env: map[string]Value{"GPUSTACK_TOKEN": secret("t6")}}, "t5"},
		{"--token without a value", Deployment{Args: []Value{{S: "--token"}}}, ""},
	}
	for _, tt := range tests {
		v, ok := tt.d.RegistrationToken()
		if v.S != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: got %q, %t; want %q", tt.name, v.S, ok, tt.want)
		}
	}
}
