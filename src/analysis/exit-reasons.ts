/**
 * Exit reasons as the kernel prints them: VMX's table on Intel (`EPT_MISCONFIG`, `HLT`, upper
 * case), SVM's on AMD (`npf`, `hlt`, `msr`, `PF excp`, lower case, some with a space); older
 * kernels printed the same names. The reason is read from a kvm_exit body by kvmExitReason
 * (parsers/event-fields.ts); here, the vendor tables for numeric reasons.
 */
import { kvmExitReason } from '../parsers/event-fields.js';

/** Which hardware virtualisation a host trace's exit names come from. */
export type ExitVendor = 'intel-vmx' | 'amd-svm' | 'unknown';

/** VMX basic exit reasons (Intel SDM appendix C; `arch/x86/include/uapi/asm/vmx.h`), for numeric bodies. */
const VMX: Record<number, string> = {
  0: 'EXCEPTION_NMI', 1: 'EXTERNAL_INTERRUPT', 2: 'TRIPLE_FAULT', 3: 'INIT_SIGNAL', 4: 'SIPI_SIGNAL',
  7: 'INTERRUPT_WINDOW', 8: 'NMI_WINDOW', 9: 'TASK_SWITCH', 10: 'CPUID', 12: 'HLT', 13: 'INVD',
  14: 'INVLPG', 15: 'RDPMC', 16: 'RDTSC', 18: 'VMCALL', 19: 'VMCLEAR', 20: 'VMLAUNCH', 21: 'VMPTRLD',
  22: 'VMPTRST', 23: 'VMREAD', 24: 'VMRESUME', 25: 'VMWRITE', 26: 'VMOFF', 27: 'VMON', 28: 'CR_ACCESS',
  29: 'DR_ACCESS', 30: 'IO_INSTRUCTION', 31: 'MSR_READ', 32: 'MSR_WRITE', 33: 'INVALID_STATE',
  34: 'MSR_LOAD_FAIL', 36: 'MWAIT_INSTRUCTION', 37: 'MONITOR_TRAP_FLAG', 39: 'MONITOR_INSTRUCTION',
  40: 'PAUSE_INSTRUCTION', 41: 'MCE_DURING_VMENTRY', 43: 'TPR_BELOW_THRESHOLD', 44: 'APIC_ACCESS',
  45: 'EOI_INDUCED', 46: 'GDTR_IDTR', 47: 'LDTR_TR', 48: 'EPT_VIOLATION', 49: 'EPT_MISCONFIG',
  50: 'INVEPT', 51: 'RDTSCP', 52: 'PREEMPTION_TIMER', 53: 'INVVPID', 54: 'WBINVD', 55: 'XSETBV',
  56: 'APIC_WRITE', 57: 'RDRAND', 58: 'INVPCID', 59: 'VMFUNC', 60: 'ENCLS', 61: 'RDSEED', 62: 'PML_FULL',
  63: 'XSAVES', 64: 'XRSTORS', 67: 'UMWAIT', 68: 'TPAUSE', 74: 'BUS_LOCK', 75: 'NOTIFY',
};

/** SVM exit codes (AMD APM vol. 2 appendix C; `arch/x86/include/uapi/asm/svm.h`), for numeric bodies. */
const SVM: Record<number, string> = {
  0x060: 'interrupt', 0x061: 'nmi', 0x062: 'smi', 0x063: 'init', 0x064: 'vintr', 0x065: 'cr0_sel_write',
  0x06e: 'rdtsc', 0x06f: 'rdpmc', 0x070: 'pushf', 0x071: 'popf', 0x072: 'cpuid', 0x073: 'rsm', 0x074: 'iret',
  0x075: 'swint', 0x076: 'invd', 0x077: 'pause', 0x078: 'hlt', 0x079: 'invlpg', 0x07a: 'invlpga', 0x07b: 'io',
  0x07c: 'msr', 0x07d: 'task_switch', 0x07e: 'ferr_freeze', 0x07f: 'shutdown', 0x080: 'vmrun',
  0x081: 'hypercall', 0x082: 'vmload', 0x083: 'vmsave', 0x084: 'stgi', 0x085: 'clgi', 0x086: 'skinit',
  0x087: 'rdtscp', 0x088: 'icebp', 0x089: 'wbinvd', 0x08a: 'monitor', 0x08b: 'mwait', 0x08d: 'xsetbv',
  0x08f: 'write_efer_trap', 0x090: 'write_cr0_trap', 0x094: 'write_cr4_trap', 0x098: 'write_cr8_trap',
  0x0a2: 'invpcid', 0x0a5: 'buslock', 0x400: 'npf', 0x401: 'avic_incomplete_ipi',
  0x402: 'avic_unaccelerated_access', 0x403: 'vmgexit',
};
const SVM_CR = ['read_cr', 'write_cr'];
const SVM_EXCP = ['DE', 'DB', '', 'BP', 'OF', 'BR', 'UD', 'NM', 'DF', '', 'TS', 'NP', 'SS', 'GP', 'PF', '', 'MF', 'AC', 'MC', 'XF'];

/** The SVM name of an exit code, as the kernel's table prints it; undefined when unnamed. */
export function svmReasonName(code: number): string | undefined {
  if (SVM[code]) return SVM[code];
  if (code < 0x020) return `${SVM_CR[code >> 4]}${code & 0xf}`;
  if (code < 0x040) return `${code < 0x030 ? 'read_dr' : 'write_dr'}${code & 0xf}`;
  if (code < 0x060 && SVM_EXCP[code - 0x040]) return `${SVM_EXCP[code - 0x040]} excp`;
  return undefined;
}

/** The VMX name of a basic exit reason; undefined when unnamed. */
export function vmxReasonName(code: number): string | undefined {
  return VMX[code & 0xffff];
}

const VMX_NAMES = new Set(Object.values(VMX));
const SVM_NAMES = new Set([...Object.values(SVM), 'hlt', 'npf', 'msr', 'io']);

/** The exit reason in a kvm_exit body, as printed (`HLT`, `npf`, `PF excp`, `INVALID_STATE FAILED_VMENTRY`): see kvmExitReason. */
export const exitReasonText = kvmExitReason;

/** Which vendor printed a reason name: VMX names are upper case, SVM names lower case. */
export function reasonVendor(reason: string): ExitVendor {
  const first = reason.split(' ')[0];
  if (VMX_NAMES.has(first)) return 'intel-vmx';
  if (SVM_NAMES.has(first) || / excp$/.test(reason) || /^(read|write)_(cr|dr)\d+$/.test(reason) || first.startsWith('vmgexit')) return 'amd-svm';
  return 'unknown';
}

/**
 * Names a numeric reason (`reason 30`, `reason 0x7b` — what a decoder without the print fmt's
 * symbol table shows) with the table of the vendor the other exits of the trace revealed.
 */
export function nameNumericReason(reason: string, vendor: ExitVendor): string {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(reason)) return reason;
  const code = Number(reason);
  const name = vendor === 'intel-vmx' ? vmxReasonName(code) : vendor === 'amd-svm' ? svmReasonName(code) : undefined;
  return name ?? reason;
}

/** A human name for a vendor. */
export function vendorLabel(v: ExitVendor): string {
  return v === 'intel-vmx' ? 'Intel VMX' : v === 'amd-svm' ? 'AMD SVM' : 'unknown vendor';
}
