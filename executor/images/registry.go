package images

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/executor/internal/env"
	"github.com/berth-dev/berth/executor/internal/msg"
)

// dockerHubServer is the key Docker's CLI stores Docker Hub credentials
// under.
const dockerHubServer = "https://index.docker.io/v1/"

// registryCreds finds registry credentials in the local Docker client
// configuration (DOCKER_CONFIG/config.json, else ~/.docker/config.json):
// the "auths" entries, and the credential helpers named by "credHelpers"
// and "credsStore". The result is only ever passed to a node's engine as
// the X-Registry-Auth header of one pull: never written to a node, never
// printed.
type registryCreds struct {
	configPath string
	// helper runs docker-credential-NAME (a fake in tests).
	helper func(name, server string) (*credentials.Credentials, error)

	once  sync.Once
	file  *dockerConfigFile
	err   error
	mu    sync.Mutex
	cache map[string]string // registry host -> encoded auth
}

// dockerConfigFile is the part of ~/.docker/config.json berth reads.
type dockerConfigFile struct {
	Auths       map[string]dockerAuthEntry `json:"auths"`
	CredsStore  string                     `json:"credsStore"`
	CredHelpers map[string]string          `json:"credHelpers"`
}

type dockerAuthEntry struct {
	Auth          string `json:"auth"` // base64("user:password")
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

func newRegistryCreds(environ []string, home string) *registryCreds {
	dir := env.Get(environ, "DOCKER_CONFIG")
	if dir == "" {
		if home == "" {
			home = env.Get(environ, "HOME")
		}
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		dir = filepath.Join(home, ".docker")
	}
	return &registryCreds{configPath: filepath.Join(dir, "config.json"), helper: runCredentialHelper, cache: map[string]string{}}
}

func runCredentialHelper(name, server string) (*credentials.Credentials, error) {
	return client.Get(client.NewShellProgramFunc("docker-credential-"+name), server)
}

func (rc *registryCreds) load() (*dockerConfigFile, error) {
	rc.once.Do(func() {
		b, err := os.ReadFile(rc.configPath)
		if errors.Is(err, fs.ErrNotExist) {
			rc.file = &dockerConfigFile{}
			return
		}
		if err != nil {
			rc.err = err
			return
		}
		var f dockerConfigFile
		if err := json.Unmarshal(b, &f); err != nil {
			rc.err = fmt.Errorf("%s: %w", rc.configPath, err)
			return
		}
		rc.file = &f
	})
	return rc.file, rc.err
}

// registryHost is the registry an image reference is pulled from
// ("docker.io" for Docker Hub).
func registryHost(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	return reference.Domain(named), nil
}

// hostOf turns a config key ("https://index.docker.io/v1/", "ghcr.io",
// "http://localhost:5000") into a registry host, as Docker's CLI does.
func hostOf(key string) string {
	h := key
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.Index(h, "/"); i >= 0 {
		h = h[:i]
	}
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

// auth returns the base64url JSON X-Registry-Auth value for pulling ref, or
// "" for an anonymous pull (no credentials configured for its registry).
// Errors never carry the credentials.
func (rc *registryCreds) auth(ref string) (string, error) {
	host, err := registryHost(ref)
	if err != nil {
		return "", err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if v, ok := rc.cache[host]; ok {
		return v, nil
	}
	ac, err := rc.lookup(host)
	if err != nil {
		return "", fmt.Errorf("registry credentials for %s: %w", host, err)
	}
	v := ""
	if ac != nil {
		if v, err = registry.EncodeAuthConfig(*ac); err != nil {
			return "", fmt.Errorf("registry credentials for %s: encode: %w", host, err)
		}
	}
	rc.cache[host] = v
	return v, nil
}

func (rc *registryCreds) lookup(host string) (*registry.AuthConfig, error) {
	f, err := rc.load()
	if err != nil {
		return nil, err
	}
	server := host
	if host == "docker.io" {
		server = dockerHubServer
	}
	helper := ""
	for _, k := range slices.Sorted(maps.Keys(f.CredHelpers)) {
		if hostOf(k) == host {
			helper = f.CredHelpers[k]
			break
		}
	}
	if helper == "" {
		helper = f.CredsStore
	}
	if helper != "" {
		c, err := rc.helper(helper, server)
		if credentials.IsErrCredentialsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("docker-credential-%s: %s", helper, redactHelperError(err, c))
		}
		if c == nil || (c.Username == "" && c.Secret == "") {
			return nil, nil
		}
		ac := &registry.AuthConfig{ServerAddress: server}
		if c.Username == "<token>" {
			ac.IdentityToken = c.Secret
		} else {
			ac.Username, ac.Password = c.Username, c.Secret
		}
		return ac, nil
	}
	// The exact key first, then any key naming the same host.
	e, ok := f.Auths[server]
	if !ok {
		for _, k := range slices.Sorted(maps.Keys(f.Auths)) {
			if hostOf(k) == host {
				e, ok = f.Auths[k], true
				break
			}
		}
	}
	if !ok {
		return nil, nil
	}
	ac := &registry.AuthConfig{ServerAddress: server, Username: e.Username, Password: e.Password,
		IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return nil, fmt.Errorf("the \"auth\" entry for %s in %s is not valid base64", host, rc.configPath)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("the \"auth\" entry for %s in %s is not user:password", host, rc.configPath)
		}
		ac.Username, ac.Password = user, pass
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return nil, nil
	}
	return ac, nil
}

// redactHelperError keeps a helper's failure message but never a secret it
// may have returned.
func redactHelperError(err error, c *credentials.Credentials) string {
	s := msg.OneLine(err.Error())
	if c != nil && len(c.Secret) >= 3 {
		s = strings.ReplaceAll(s, c.Secret, "(redacted)")
	}
	return s
}
