"""A seccomp filter for the bubblewrap sandbox, compiled to classic BPF here (no libseccomp needed).

bubblewrap loads it with ``--seccomp FD`` just before it execs the code, so it applies to the code
and everything it starts. It denies the system calls that open the kernel's larger attack surface
to an unprivileged process: new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*``
flag; ``clone3`` answers ``ENOSYS`` so that libc falls back to ``clone``, whose flags a classic BPF
filter can read), mounts (``mount`` and the new mount API), ``pivot_root``, ``ptrace`` and
cross-process memory access, the kernel keyring, ``bpf``, ``perf_event_open``, ``userfaultfd``,
``io_uring``, module loading, ``kexec_*`` and file handles. A call from another ABI (i386 on
x86_64, x32) kills the process. An architecture without a table here is refused, never unfiltered.
"""

from __future__ import annotations

import errno
import platform
import struct

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16  # little-endian: the low 32 bits of args[0] (clone's flags)

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06

RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
_X32_SYSCALL_BIT = 0x40000000

# CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
# | CLONE_NEWPID | CLONE_NEWNET
CLONE_NEW_FLAGS = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "name_to_handle_at",
)

# From the kernel's uapi headers (asm/unistd_64.h; asm-generic/unistd.h for aarch64).
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "clone": 56,
        "clone3": 435,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "perf_event_open": 298,
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "kexec_load": 246,
        "kexec_file_load": 320,
        "open_by_handle_at": 304,
        "name_to_handle_at": 303,
    },
    "aarch64": {
        "clone": 220,
        "clone3": 435,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "perf_event_open": 241,
        "userfaultfd": 282,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "kexec_load": 104,
        "kexec_file_load": 294,
        "open_by_handle_at": 265,
        "name_to_handle_at": 264,
    },
}

AUDIT_ARCH = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


class UnsupportedArchitecture(RuntimeError):
    pass


def errno_action(code: int) -> int:
    return _RET_ERRNO | (code & 0xFFFF)


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def host_architecture() -> str:
    machine = platform.machine().lower()
    machine = _MACHINE_ALIASES.get(machine, machine)
    if machine not in SYSCALLS:
        raise UnsupportedArchitecture(
            f"the sandbox has no seccomp filter for the {machine or 'unknown'} architecture "
            f"(known: {', '.join(sorted(SYSCALLS))}); untrusted code is refused"
        )
    return machine


def build_filter(arch: str | None = None) -> bytes:
    """The filter program (an array of ``struct sock_filter``) for ``arch`` (default: this host's)."""
    arch = arch or host_architecture()
    if arch not in SYSCALLS:
        raise UnsupportedArchitecture(f"no seccomp syscall table for {arch!r}")
    table = SYSCALLS[arch]
    program = [
        _insn(_BPF_LD_W_ABS, _OFFSET_ARCH),
        _insn(_BPF_JEQ_K, AUDIT_ARCH[arch], jt=1, jf=0),
        _insn(_BPF_RET_K, RET_KILL_PROCESS),  # another ABI (i386 via int 0x80 on x86_64)
        _insn(_BPF_LD_W_ABS, _OFFSET_NR),
    ]
    if arch == "x86_64":
        program += [_insn(_BPF_JGE_K, _X32_SYSCALL_BIT, jt=0, jf=1), _insn(_BPF_RET_K, RET_KILL_PROCESS)]
    program += [_insn(_BPF_JEQ_K, table["clone3"], jt=0, jf=1), _insn(_BPF_RET_K, errno_action(errno.ENOSYS))]
    for name in DENIED:
        program += [_insn(_BPF_JEQ_K, table[name], jt=0, jf=1), _insn(_BPF_RET_K, errno_action(errno.EPERM))]
    # clone: allowed (fork, threads) unless a flag asks for a new namespace.
    program += [
        _insn(_BPF_JEQ_K, table["clone"], jt=0, jf=4),
        _insn(_BPF_LD_W_ABS, _OFFSET_ARG0_LOW),
        _insn(_BPF_JSET_K, CLONE_NEW_FLAGS, jt=0, jf=1),
        _insn(_BPF_RET_K, errno_action(errno.EPERM)),
        _insn(_BPF_RET_K, RET_ALLOW),
        _insn(_BPF_RET_K, RET_ALLOW),
    ]
    return b"".join(program)
