"""Host-side tools for kpnthings: CLI, local KPN Things emulator, deploy and provisioning."""
