"""Foundations every layer uses: errors, the runtime (threads, devices, allocator, precision),
safe unpickling, and data-parallel replicas."""
