/* The pod sandbox's process for the container-runtime tests: holds the pod's namespaces,
 * reaps children and exits on SIGTERM/SIGINT, as Kubernetes' pause does. registry.k8s.io is
 * out of reach here, so the tests build this one (tools/image/build-pause-image.sh). */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
	signal(SIGTERM, quit);
	signal(SIGINT, quit);
	signal(SIGCHLD, reap);
	for (;;) pause();
}
