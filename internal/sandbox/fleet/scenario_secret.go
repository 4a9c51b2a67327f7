package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/tpm"
)

// The secret scenario (docs/secrets.md): the key broker releases a secret
// to a Verified node, sealed to its TPM; the node's trust agent keeps it on
// a tmpfs, as a trusted workload would mount it; a tamper makes the broker
// revoke it, the agent drop it, and the next release be refused.

// Names of the secret scenario.
const (
	secretName = "sandbox-volume-key"
	// secretMaxAge is the policy's evidence age, which is also the lease.
	secretMaxAge = 60
	// secretRetry is how soon the node's keeper asks again while it holds
	// nothing.
	secretRetry = 5 * time.Second
	// tmpfsRoot is where the scenario makes the node's secrets directory.
	tmpfsRoot = "/dev/shm"
)

func (s *scenario) secret(ctx context.Context) error {
	healthy := s.healthy(ctx, "")
	if len(healthy) == 0 {
		return errors.New("no Verified, schedulable node to release a secret to")
	}
	target := healthy[0]
	m, err := s.f.node(target)
	if err != nil {
		return err
	}
	n, ok := m.(*nodeProc)
	if !ok {
		return errNotOnFleetSimulator
	}
	value := make([]byte, 32)
	if _, err := rand.Read(value); err != nil {
		return err
	}
	created, err := s.createSecret(ctx, value)
	if err != nil {
		return err
	}
	p := created.Policy
	s.printf("   operator: secret %s created (id %s): released only to %s while Verified, Secure Boot on, disk encryption measured, evidence at most %ds old, sealed to the node's EK; value sha256 %s",
		created.Name, short(created.ID), strings.Join(p.HostIDs, ", "), p.MaxEvidenceAgeSeconds, digest(value))

	dir, err := os.MkdirTemp(tmpfsRoot, "tc-sandbox-secrets-")
	if err != nil {
		return fmt.Errorf("a tmpfs directory for the released secret: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, secretName)
	start := time.Now()
	if err := n.command(ctx, "secret "+dir+" "+secretName); err != nil {
		return err
	}
	// Stopping the keeper drops what it still holds.
	defer func() { _ = n.command(context.WithoutCancel(ctx), "secret") }()
	s.printf("   %s: its trust agent asks the key broker for %s (kept in %s, a tmpfs)", target, secretName, dir)
	held, err := waitFile(ctx, path, true)
	if err != nil {
		return fmt.Errorf("%s: the secret was not released: %w", target, err)
	}
	if !equalDigest(held, value) {
		return fmt.Errorf("%s holds %s with sha256 %s, want the created value's %s", target, secretName, digest(held), digest(value))
	}
	s.printf("   %s: released, sealed to its TPM's EK and unwrapped there, %s after the request: %s, %d bytes, sha256 %s (the created value)",
		target, since(start), path, len(held), digest(held))

	start = time.Now()
	if err := s.f.Measure(ctx, target, "/usr/bin/evil", "a file that is in no golden flavor"); err != nil {
		return err
	}
	s.printf("   %s: tampered: /usr/bin/evil measured (IMA log + PCR 10)", target)
	if _, err := waitFile(ctx, path, false); err != nil {
		return fmt.Errorf("%s still holds %s after the tamper: %w", target, secretName, err)
	}
	s.printf("   %s: the key broker revoked %s and the agent dropped it, %s after the tamper (%s is gone)", target, secretName, since(start), path)

	asked := time.Now()
	reason, err := s.askAsNode(ctx, n)
	if err != nil {
		return err
	}
	s.printf("   %s: asks again: refused (%s), %s", target, reason, since(asked))
	cordoned := true
	if _, err := s.f.WaitStatus(ctx, target, cluster.StatusAttestationFailed, &cordoned, scenarioTimeout); err != nil {
		return err
	}
	s.printf("   %s: Attestation Failed and cordoned %s after the tamper", target, since(start))
	s.tampered = target
	return nil
}

// createSecret creates the scenario's secret for every node of the fleet,
// replacing one of that name that an earlier run left.
func (s *scenario) createSecret(ctx context.Context, value []byte) (restapi.Secret, error) {
	var list restapi.SecretList
	if err := s.f.client.Do(ctx, http.MethodGet, "/hvs/v2/secrets?nameEqualTo="+url.QueryEscape(secretName), nil, &list); err != nil {
		return restapi.Secret{}, fmt.Errorf("list secrets: %w", err)
	}
	for _, old := range list.Secrets {
		if err := s.f.client.Do(ctx, http.MethodDelete, "/hvs/v2/secrets/"+url.PathEscape(old.ID), nil, nil); err != nil {
			return restapi.Secret{}, fmt.Errorf("delete the secret of an earlier run: %w", err)
		}
	}
	req := restapi.SecretRequest{Name: secretName, Value: value, Policy: restapi.SecretPolicy{
		HostIDs: s.nodes, MaxEvidenceAgeSeconds: secretMaxAge,
	}}
	var created restapi.Secret
	if err := s.f.client.Do(ctx, http.MethodPost, "/hvs/v2/secrets", req, &created); err != nil {
		return restapi.Secret{}, fmt.Errorf("create secret %s: %w", secretName, err)
	}
	return created, nil
}

// askAsNode asks the key broker for the secret on the node's behalf, with
// the node's own bus credentials, and returns the refusal's reason; a
// release is an error.
func (s *scenario) askAsNode(ctx context.Context, n *nodeProc) (string, error) {
	creds, err := os.ReadFile(filepath.Join(n.dir, nodeCredsFile))
	if err != nil {
		return "", err
	}
	parsed, err := bus.ParseCredentials(creds)
	if err != nil {
		return "", err
	}
	g := parsed.AgentGrammar()
	request, err := g.SecretRequestSubject(n.name)
	if err != nil {
		return "", err
	}
	answer, err := g.SecretAnswerSubject(n.name)
	if err != nil {
		return "", err
	}
	nc, err := natsbus.Connect(ctx, s.f.NATSURL(), creds, s.f.roots, "sandbox-secret-"+n.name, s.f.log)
	if err != nil {
		return "", fmt.Errorf("connect as %s: %w", n.name, err)
	}
	defer nc.Close()
	answers := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe(answer, answers)
	if err != nil {
		return "", err
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg, _ := json.Marshal(bus.SecretRequest{Names: []string{secretName}})
	if err := nc.Publish(request, msg); err != nil {
		return "", err
	}
	timeout := time.After(scenarioTimeout)
	for {
		select {
		case m := <-answers:
			var ans bus.SecretAnswer
			if err := json.Unmarshal(m.Data, &ans); err != nil {
				return "", fmt.Errorf("answer of the key broker: %w", err)
			}
			for _, r := range ans.Refused {
				// A pushed revocation answers no request.
				if r.Name == secretName && r.Reason != bus.ReasonRevoked {
					return r.Reason, nil
				}
			}
			for _, r := range ans.Released {
				if r.Name == secretName {
					return "", fmt.Errorf("%s: the key broker released %s to a tampered node", n.name, secretName)
				}
			}
		case <-timeout:
			return "", fmt.Errorf("%s: no answer of the key broker in %s", n.name, scenarioTimeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// waitFile waits until the file at path exists (or, with present false, is
// gone) and returns its content.
func waitFile(ctx context.Context, path string, present bool) ([]byte, error) {
	var b []byte
	err := poll(ctx, scenarioTimeout, 50*time.Millisecond, func() (bool, error) {
		var err error
		b, err = os.ReadFile(path) //nolint:gosec // the scenario's own tmpfs directory
		switch {
		case present && err == nil, !present && errors.Is(err, os.ErrNotExist):
			return true, nil
		case errors.Is(err, os.ErrNotExist):
			return false, nil
		}
		return false, err
	}, func() error {
		return fmt.Errorf("%s: still %s after %s", path, map[bool]string{true: "missing", false: "there"}[present], scenarioTimeout)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// digest is the start of a value's SHA-256, to show which value a node
// holds without printing the secret.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func equalDigest(a, b []byte) bool { return sha256.Sum256(a) == sha256.Sum256(b) }

// secretKeeper is the node's keeper of key broker secrets while the secret
// scenario runs: the trust agent's own keeper (agent.Secrets) on this
// node's TPM and bus credentials, which the trust agent runs when its
// configuration names secrets (secrets.names, secrets.dir).
type secretKeeper struct {
	stop func()
}

// keepSecret runs the node command "secret <dir> <name>": keep the secret
// name in dir, which must be on a tmpfs; "secret" alone stops the keeper,
// which drops what it holds.
func (n *node) keepSecret(ctx context.Context, arg string) error {
	if n.secrets.stop != nil {
		n.secrets.stop()
		n.secrets.stop = nil
	}
	if arg == "" {
		return nil
	}
	dir, name, ok := strings.Cut(arg, " ")
	if !ok || dir == "" || name == "" {
		return fmt.Errorf("secret: want <dir> <name>, got %q", arg)
	}
	creds, err := bus.ParseCredentials(n.creds)
	if err != nil {
		return fmt.Errorf("bus credentials: %w", err)
	}
	nc, err := natsbus.Connect(ctx, n.cfg.NATSURL, n.creds, n.roots, "agent-secrets-"+n.cfg.HostID, n.logger)
	if err != nil {
		return fmt.Errorf("connect to the verifier bus: %w", err)
	}
	keeper, err := n.newKeeper(agent.SecretsConfig{Names: []string{name}, Dir: dir, Retry: secretRetry, Roots: n.roots})
	if err == nil {
		err = keeper.Attach(ctx, natsbus.Adapt(nc), creds.AgentGrammar())
	}
	if err != nil {
		nc.Close()
		return err
	}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		// Run ends without an error when its context does, dropping what it holds.
		_ = keeper.Run(kctx)
		close(done)
	}()
	n.secrets.stop = func() {
		cancel()
		<-done
		nc.Close()
	}
	return nil
}

// newKeeper makes the agent's keeper on this boot's TPM.
func (n *node) newKeeper(cfg agent.SecretsConfig) (*agent.Secrets, error) {
	a, err := agent.New(agent.Config{HostID: n.cfg.HostID, NodeName: n.cfg.HostID, AgentVersion: "sandbox"}, n.tpm,
		measure.New(n.root.Dir, measure.WithLogger(n.logger)), n.logger)
	if err != nil {
		return nil, err
	}
	return a.NewSecrets(cfg, n.tpm)
}

// Import unwraps a released secret under the TPM lock (agent.SecretTPM).
func (l *lockedTPM) Import(b tpm.ImportBlob) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nt.Import(b)
}
