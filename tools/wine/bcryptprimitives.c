/* bcryptprimitives.dll for Wine 8: the one export Go's Windows runtime
 * needs (ProcessPrng), answered with RtlGenRandom (advapi32's
 * SystemFunction036), which Wine implements. See README.md. */
#include <windows.h>

typedef BOOLEAN(WINAPI *gen_random_fn)(PVOID buf, ULONG len);

BOOL WINAPI ProcessPrng(PBYTE out, SIZE_T n) {
    static gen_random_fn gen_random;
    if (gen_random == NULL) {
        HMODULE advapi = LoadLibraryA("advapi32.dll");
        if (advapi == NULL) return FALSE;
        gen_random = (gen_random_fn)GetProcAddress(advapi, "SystemFunction036");
        if (gen_random == NULL) return FALSE;
    }
    /* RtlGenRandom takes a ULONG length: feed it in pieces. */
    const SIZE_T piece = 1u << 28;
    while (n > 0) {
        ULONG k = (ULONG)(n < piece ? n : piece);
        if (!gen_random(out, k)) return FALSE;
        out += k;
        n -= k;
    }
    return TRUE;
}
