"""A simulated mesh and storm around Home Assistant's home, for trying meshbot without hardware."""
