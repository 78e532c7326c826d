"""Running many independent jobs: in-process or on Ray, with the job specs workers rebuild spaces and data from."""
