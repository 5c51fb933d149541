"""What the BPF path of `conntrack` needs, checked before anything is loaded,
each missing piece named with how to get it (bcc's tools do the same checks)."""

from __future__ import annotations

import os
import platform


def kprobes_available() -> bool:
    return (os.path.exists("/sys/bus/event_source/devices/kprobe")
            or os.path.exists("/sys/kernel/tracing/kprobe_events")
            or os.path.exists("/sys/kernel/debug/tracing/kprobe_events"))


def missing_for_bcc() -> list[str]:
    """What any bcc program needs: bcc itself and headers of the running kernel."""
    out = []
    release = platform.release()
    try:
        import bcc  # noqa: F401  (python3-bpfcc; the venv sees it through system site-packages)
    except ImportError:
        out.append("bcc is not installed (Debian/Ubuntu: apt install python3-bpfcc)")
    if not os.path.exists(f"/lib/modules/{release}/build"):
        out.append(f"kernel headers for {release} are missing (Debian/Ubuntu: apt install linux-headers-{release})")
    return out


def missing() -> list[str]:
    """Everything the kprobe path lacks here, bcc's needs included."""
    out = [] if kprobes_available() else [
        "kprobes unavailable on this kernel (no kprobe event source: CONFIG_KPROBES off?)"]
    return out + missing_for_bcc()
