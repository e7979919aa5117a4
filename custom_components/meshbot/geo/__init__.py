"""Pure Python, no homeassistant import: great-circle geometry for the mesh and lightning packages."""
