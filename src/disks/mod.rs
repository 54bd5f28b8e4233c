//! Disks stage (DESIGN §6). In progress.
