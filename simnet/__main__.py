"""``python -m simnet up …``: the simnet commands without the rest of badgewatch."""

from simnet.cli import simnet

if __name__ == "__main__":
    simnet(prog_name="simnet")
