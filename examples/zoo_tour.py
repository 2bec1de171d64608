"""A tour of circuitry's zoo: list the shipped models and summarize one manifest (runs in seconds).

Run: ``python examples/zoo_tour.py [NAME]``.
"""


from circuitry.zoo import list_zoo, load_zoo, zoo_manifest
from circuitry.zoo.registry import summary


def main(name: str = "attn-only-2l") -> None:
    print("zoo models:")
    for n in list_zoo():
        m = zoo_manifest(n)
        print(f"  {n:14s} {m.family:6s} {m.description}")
    s = summary(zoo_manifest(name))
    print(f"\n{name}: {s['config']}")
    print(f"trained {s['steps']} steps in {s['train_seconds']:.0f} s on {s['threads']} thread (torch {s['torch_version']})")
    print(f"intermediate checkpoints at steps {s['checkpoints']}")
    print(f"held-out loss per repeat of a random block: {s['loss_per_repeat']}")
    for layer, (prev, ind) in enumerate(zip(s["prev_token"], s["induction"])):
        best_prev = max(range(len(prev)), key=prev.__getitem__)
        best_ind = max(range(len(ind)), key=ind.__getitem__)
        print(f"  layer {layer}: best prev-token L{layer}H{best_prev} = {prev[best_prev]:.2f}, "
              f"best prefix-matching L{layer}H{best_ind} = {ind[best_ind]:.2f}")
    model, manifest = load_zoo(name)  # sha256-verified, eval mode
    n_params = sum(p.numel() for p in model.parameters())
    print(f"loaded {type(model).__name__} with {n_params:,} parameters; weights sha256 {manifest.weights_sha256[:16]}...")


if __name__ == "__main__":
    main()  # argv[1], if given, is an output folder (the tests pass one); the tour writes nothing
