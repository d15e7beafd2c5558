// Command kube is minilab's multi-call Kubernetes binary: one executable that
// holds kubeadm, kubelet, kubectl, kube-apiserver, kube-controller-manager,
// kube-scheduler and kube-proxy, so the shared libraries are linked (and
// stored in the node image) once.
//
// It picks the component from the name it was started under (a symlink such
// as /usr/bin/kubelet -> kube) or, failing that, from its first argument
// (`kube kubeadm version`).
//
// images/components/build.sh copies this file into a generated wrapper module
// that requires k8s.io/kubernetes at the wanted version; it is not built from
// the minilab repository itself.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // CronJob time zones (kube-apiserver, kube-controller-manager)

	"github.com/spf13/cobra"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"

	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeadm "k8s.io/kubernetes/cmd/kubeadm/app"
	kubeadmerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// runCobra runs a component's cobra command the way its upstream main does.
func runCobra(newCommand func() *cobra.Command) func() int {
	return func() int { return cli.Run(newCommand()) }
}

var components = map[string]func() int{
	"kube-apiserver":          runCobra(apiserver.NewAPIServerCommand),
	"kube-controller-manager": runCobra(controllermanager.NewControllerManagerCommand),
	"kube-scheduler": runCobra(func() *cobra.Command {
		return scheduler.NewSchedulerCommand()
	}),
	"kube-proxy": runCobra(proxy.NewProxyCommand),
	"kubelet": runCobra(func() *cobra.Command {
		return kubelet.NewKubeletCommand(context.Background())
	}),
	"kubeadm": func() int {
		// HandleError prints the error and exits with kubeadm's own codes.
		kubeadmerrors.HandleError(kubeadm.Run())
		return 0
	},
	"kubectl": func() int {
		// As upstream: set klog's verbosity before the command is built, so
		// plugin and kuberc handling can log.
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	},
}

func names() []string {
	var n []string
	for name := range components {
		n = append(n, name)
	}
	sort.Strings(n)
	return n
}

func main() {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	if run, ok := components[name]; ok {
		os.Exit(run())
	}
	if len(os.Args) > 1 {
		if run, ok := components[os.Args[1]]; ok {
			// Shift so the component sees itself as argv[0], as under a symlink.
			os.Args = os.Args[1:]
			os.Exit(run())
		}
	}
	fmt.Fprintf(os.Stderr, "usage: %s COMPONENT [ARGS...]  (or run it through a symlink named COMPONENT)\ncomponents: %s\n",
		name, strings.Join(names(), ", "))
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
		os.Exit(0)
	}
	os.Exit(2)
}
