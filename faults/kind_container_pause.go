package faults

// ContainerPause freezes every process of a compose container (docker
// pause) until the fault ends (docker unpause).
const ContainerPause Kind = "container-pause"

func init() { register(containerPause{}) }

type containerPause struct{}

func (containerPause) Spec() Spec {
	return Spec{Kind: ContainerPause, Target: TargetContainer,
		Doc: "docker pause the container (compose; every process frozen); unpause when the fault ends"}
}

// OnContainer implements ContainerKind.
func (containerPause) OnContainer() ContainerAction {
	return ContainerAction{Apply: ContainerOpPause, Remove: ContainerOpUnpause}
}
