#!/bin/sh
# shellcheck disable=SC2317 # the blocks after `exit` are data
# The `docker run` lines of the README, kept in one place.
#
#   deploy/run-lines.sh          list the block names
#   deploy/run-lines.sh NAME     print one block
#
# README.md shows every block below verbatim and scripts/test-static.sh runs
# them from here (and checks that README.md still carries them unchanged), so
# the documentation and the end-to-end test cannot drift apart.
# A block starts at a line "#@ NAME" and ends at the next one; this script
# stops before the first of them.
set -eu
if [ $# -eq 0 ]; then
    sed -n 's/^#@ //p' "$0"
    exit 0
fi
grep -qx "#@ $1" "$0" || {
    echo "run-lines: no block named '$1'" >&2
    exit 2
}
awk -v want="$1" '
    /^#@ / { on = ($2 == want); next }
    on { buf[++n] = $0 }
    END { while (n > 0 && buf[n] == "") n--; for (i = 1; i <= n; i++) print buf[i] }
' "$0"
exit 0

#@ most-linuxes
DATALOOP_AGENT_KEY=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
DATALOOP_NAME=docker_container_name

docker run -d \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /var/run/docker.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro \
outlyer/agent:latest

#@ amazon-linux-ecs
DATALOOP_AGENT_KEY=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
DATALOOP_NAME=docker_container_name

docker run -d \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /var/run/docker.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /cgroup:/rootfs/sys/fs/cgroup:ro \
outlyer/agent:latest

#@ centos6-cgroups
sudo yum install -y libcgroup

#@ centos6
DATALOOP_AGENT_KEY=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
DATALOOP_NAME=docker_container_name

docker run -d \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /var/run/docker.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /cgroup:/rootfs/sys/fs/cgroup:ro \
outlyer/agent:latest

#@ host-network
DATALOOP_AGENT_KEY=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
DATALOOP_NAME=docker_container_name

docker run -d --net host \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /var/run/docker.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro \
outlyer/agent:latest

#@ non-root
docker run -d \
--user 65534:65534 --group-add "$(stat -c %g /var/run/docker.sock)" \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /var/run/docker.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro \
outlyer/agent:latest

#@ proxy
docker run -d \
-e "HTTPS_PROXY=http://proxy.example.com:3128" \
-e "HTTP_PROXY=http://proxy.example.com:3128" \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /var/run/docker.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro \
outlyer/agent:latest

#@ podman
DATALOOP_AGENT_KEY=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
DATALOOP_NAME=podman_container_name

podman run -d \
-e "DATALOOP_AGENT_KEY=${DATALOOP_AGENT_KEY}" \
-e "DATALOOP_NAME=${DATALOOP_NAME}" \
-v /run/podman/podman.sock:/var/run/docker.sock:ro \
-v /proc:/rootfs/proc:ro \
-v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro \
-v /etc/machine-id:/rootfs/etc/machine-id:ro \
outlyer/agent:latest

#@ fingerprint
curl -XGET http://<container>:8000

#@ build
scripts/build-static.sh
docker build -f Dockerfile.scratch -t outlyer/agent:latest .

#@ test
scripts/test-static.sh
