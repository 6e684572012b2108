apiVersion: v1
kind: Node
metadata:
  name: ${NAME}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    volumes.kubernetes.io/controller-managed-attach-detach: "true"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: ${NAME}
    node-role.kubernetes.io/worker: ""
    topology.kubernetes.io/region: local
    topology.kubernetes.io/zone: ${ZONE}
spec: {}
status:
  allocatable:
    cpu: "${CPU}"
    memory: ${MEMORY}
    pods: "${PODS}"
    ephemeral-storage: 100Gi
  capacity:
    cpu: "${CPU}"
    memory: ${MEMORY}
    pods: "${PODS}"
    ephemeral-storage: 100Gi
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
