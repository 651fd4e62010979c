// podsim stands in for the kubelet and the container runtime of the test control plane
// started by scripts/testenv.sh. It is the only simulated part of that cluster: it keeps a few
// Node objects Ready (node status heartbeats and node Leases, as a kubelet does) and, for every
// pod the real scheduler bound to one of them, writes the pod status a kubelet would write once
// the containers run. It writes Pod and Node status and node Leases, nothing else.
//
// Image IDs are what a container runtime reports after a pull: `name@sha256:…`. A pinned image
// reports its own digest; an image by tag on a loopback registry (127.0.0.1 or localhost, plain
// HTTP) is resolved with a HEAD request, as a pull would, and a failed resolution leaves the
// container waiting in ErrImagePull. An image on any other registry cannot be pulled here (the
// test machines reach loopback only): it is reported as running with a podsim:// image ID.
//
// A pod whose image reference contains any line of the --never-ready file runs but never becomes
// Ready (as with a readiness probe that never passes). The file is read whenever a pod is
// considered, so a test can add a line at any time.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

var manifestTypes = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

var registryClient = &http.Client{Timeout: 5 * time.Second}

// imageID resolves an image reference as a pull would; "" when it cannot be pulled.
func imageID(image string) string {
	name, digest, pinned := strings.Cut(image, "@")
	if pinned {
		return trimTag(name) + "@" + digest
	}
	host, path, ok := strings.Cut(image, "/")
	if !ok || !(strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:")) {
		return "podsim://" + image
	}
	repo, tag := trimTag(path), "latest"
	if i := strings.LastIndex(path, ":"); i > 0 {
		tag = path[i+1:]
	}
	req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return ""
	}
	req.Header.Set("Accept", manifestTypes)
	resp, err := registryClient.Do(req)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || d == "" {
		return ""
	}
	return host + "/" + repo + "@" + d
}

// trimTag drops a `:tag` after the last `/`.
func trimTag(name string) string {
	slash := strings.LastIndex(name, "/")
	if i := strings.LastIndex(name, ":"); i > slash {
		return name[:i]
	}
	return name
}

const heartbeat = 10 * time.Second

type sim struct {
	client     kubernetes.Interface
	nodes      map[string]string // node name -> architecture
	neverReady string
	pods       cache.Indexer
	queue      workqueue.TypedRateLimitingInterface[string]
	mu         sync.Mutex
	nextIP     int
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a cluster admin")
	neverReady := flag.String("never-ready", "", "file of image substrings whose pods never become Ready")
	nodeList := flag.String("nodes", "ferry-amd64=amd64,ferry-arm64=arm64", "NAME=ARCH,... nodes to keep Ready")
	klog.InitFlags(nil)
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "ferry-testenv-podsim"
	client := kubernetes.NewForConfigOrDie(cfg)
	nodes := map[string]string{}
	for _, item := range strings.Split(*nodeList, ",") {
		name, arch, ok := strings.Cut(item, "=")
		if !ok {
			klog.Fatalf("--nodes: %q is not NAME=ARCH", item)
		}
		nodes[name] = arch
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s := &sim{
		client:     client,
		nodes:      nodes,
		neverReady: *neverReady,
		queue:      workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		nextIP:     2,
	}
	for name, arch := range nodes {
		if err := s.registerNode(ctx, name, arch); err != nil {
			klog.Fatalf("node %s: %v", name, err)
		}
	}
	go wait.UntilWithContext(ctx, s.heartbeatAll, heartbeat)

	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Core().V1().Pods().Informer()
	s.pods = informer.GetIndexer()
	enqueue := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			s.queue.Add(key)
		}
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	})
	factory.Start(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)
	fmt.Println("podsim: nodes ready, watching pods")
	for i := 0; i < 4; i++ {
		go wait.UntilWithContext(ctx, s.worker, time.Second)
	}
	<-ctx.Done()
	s.queue.ShutDown()
}

func (s *sim) registerNode(ctx context.Context, name, arch string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/arch":     arch,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/hostname": name,
				"ferry.dev/testenv":      "podsim",
			},
		},
	}
	_, err := s.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return s.heartbeatNode(ctx, name, arch)
}

func (s *sim) heartbeatAll(ctx context.Context) {
	for name, arch := range s.nodes {
		if err := s.heartbeatNode(ctx, name, arch); err != nil {
			klog.Errorf("heartbeat %s: %v", name, err)
		}
	}
}

// heartbeatNode writes what a kubelet writes about its node: a Ready status with capacity, and a
// renewed Lease in kube-node-lease.
func (s *sim) heartbeatNode(ctx context.Context, name, arch string) error {
	node, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("5000"),
	}
	node.Status.Capacity = capacity
	node.Status.Allocatable = capacity
	node.Status.Phase = corev1.NodeRunning
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		Architecture: arch, OperatingSystem: "linux", KubeletVersion: "podsim",
		ContainerRuntimeVersion: "podsim://0",
	}
	ready := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "podsim keeps this node Ready", LastHeartbeatTime: now, LastTransitionTime: now,
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready.LastTransitionTime = c.LastTransitionTime
		}
	}
	node.Status.Conditions = []corev1.NodeCondition{ready}
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return s.renewLease(ctx, name)
}

func (s *sim) renewLease(ctx context.Context, name string) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	duration := int32(40)
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: &name, LeaseDurationSeconds: &duration, RenewTime: &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func (s *sim) worker(ctx context.Context) {
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		if err := s.sync(ctx, key); err != nil {
			klog.V(2).Infof("pod %s: %v (retrying)", key, err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func (s *sim) sync(ctx context.Context, key string) error {
	obj, exists, err := s.pods.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	if _, ours := s.nodes[pod.Spec.NodeName]; !ours {
		return nil
	}
	pods := s.client.CoreV1().Pods(pod.Namespace)
	if pod.DeletionTimestamp != nil {
		// The kubelet confirms a deletion once the containers stopped: there are none here.
		zero := int64(0)
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	if pod.Status.StartTime != nil && pod.Status.Phase == corev1.PodRunning {
		return nil // a kubelet reports a running pod once; readiness never changes here
	}
	updated := pod.DeepCopy()
	s.running(updated, s.blocked(pod))
	_, err = pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}

// blocked says whether the pod runs an image listed in the never-ready file (read now).
func (s *sim) blocked(pod *corev1.Pod) bool {
	if s.neverReady == "" {
		return false
	}
	data, err := os.ReadFile(s.neverReady)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			if strings.Contains(c.Image, line) {
				return true
			}
		}
	}
	return false
}

func (s *sim) podIP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip := fmt.Sprintf("10.244.%d.%d", s.nextIP/250, 1+s.nextIP%250)
	s.nextIP++
	return ip
}

// running writes the status of a pod whose containers all started: Ready unless blocked. A pod
// that does not restart (a Job's) has completed.
func (s *sim) running(pod *corev1.Pod, blocked bool) {
	now := metav1.Now()
	ids := map[string]string{}
	for _, c := range pod.Spec.Containers {
		if ids[c.Name] = imageID(c.Image); ids[c.Name] == "" {
			blocked = true // a container that cannot be pulled never becomes Ready
		}
	}
	done := pod.Spec.RestartPolicy != corev1.RestartPolicyAlways && !blocked
	ready := corev1.ConditionTrue
	if blocked || done {
		ready = corev1.ConditionFalse
	}
	pod.Status.HostIP = "127.0.0.1"
	pod.Status.PodIP = s.podIP()
	pod.Status.PodIPs = []corev1.PodIP{{IP: pod.Status.PodIP}}
	pod.Status.StartTime = &now
	pod.Status.Phase = corev1.PodRunning
	if done {
		pod.Status.Phase = corev1.PodSucceeded
	}
	condition := func(t corev1.PodConditionType, st corev1.ConditionStatus) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: st, LastTransitionTime: now}
		if st == corev1.ConditionFalse && blocked {
			c.Reason, c.Message = "ContainersNotReady", "readiness probe failed (testenv never-ready)"
		}
		return c
	}
	pod.Status.Conditions = []corev1.PodCondition{
		condition(corev1.PodScheduled, corev1.ConditionTrue),
		condition(corev1.PodInitialized, corev1.ConditionTrue),
		condition(corev1.ContainersReady, ready),
		condition(corev1.PodReady, ready),
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		status := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: ids[c.Name],
			ContainerID: "podsim://" + string(pod.UID) + "/" + c.Name,
			Ready:       ready == corev1.ConditionTrue,
		}
		started := !done
		status.Started = &started
		if ids[c.Name] == "" {
			status.Ready, started = false, false
			status.State.Waiting = &corev1.ContainerStateWaiting{
				Reason: "ErrImagePull", Message: "podsim could not resolve " + c.Image,
			}
		} else if done {
			status.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
			}
		} else {
			status.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		}
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, status)
	}
}
