package faults

// ContainerRestart restarts a compose container (docker restart).
const ContainerRestart Kind = "container-restart"

func init() { register(containerRestart{}) }

type containerRestart struct{}

func (containerRestart) Spec() Spec {
	return Spec{Kind: ContainerRestart, Target: TargetContainer,
		Doc: "docker restart the container (compose) at once"}
}

// OnContainer implements ContainerKind: over once the container is
// healthy again.
func (containerRestart) OnContainer() ContainerAction {
	return ContainerAction{Apply: ContainerOpRestart}
}
