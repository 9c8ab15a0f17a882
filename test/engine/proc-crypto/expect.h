/* What the lab kernels list (see README): file, algorithm, rank by priority,
 * driver, class. Included by engine_driver.c only. */
#define CPU KAIO_DRV_CPU
#define DEV KAIO_DRV_DEVICE
static const struct capture captures[] = {
    { "6.1-default.txt", "cbc(aes)", 0, "cbc-aes-aesni", CPU },
    { "6.1-default.txt", "ctr(aes)", 0, "ctr-aes-aesni", CPU },
    { "6.1-default.txt", "gcm(aes)", 0, "generic-gcm-aesni", CPU },
    { "6.1-device.txt", "cbc(aes)", 0, "virtio_crypto_aes_cbc", DEV },
    { "6.1-device.txt", "cbc(aes)", 1, "cbc(aes-generic)", CPU },
    { "6.1-device.txt", "ctr(aes)", 0, "ctr(aes-generic)", CPU },
    { "6.1-device.txt", "gcm(aes)", 0, "gcm_base(ctr(aes-generic),ghash-generic)", CPU },
    { "6.12-default.txt", "cbc(aes)", 0, "cbc-aes-aesni", CPU },
    { "6.12-default.txt", "ctr(aes)", 0, "ctr-aes-aesni", CPU },
    { "6.12-default.txt", "gcm(aes)", 0, "generic-gcm-aesni-avx", CPU },
    { "6.12-default.txt", "gcm(aes)", 1, "generic-gcm-aesni", CPU },
    { "6.12-device.txt", "cbc(aes)", 0, "virtio_crypto_aes_cbc", DEV },
    { "6.12-device.txt", "cbc(aes)", 1, "cbc(ecb(aes-generic))", CPU },
    { "6.12-device.txt", "ctr(aes)", 0, "ctr(aes-generic)", CPU },
    { "6.12-device.txt", "gcm(aes)", 0, "gcm_base(ctr(aes-generic),ghash-generic)", CPU },
    { "7.2-default.txt", "cbc(aes)", 0, "cbc-aes-aesni", CPU },
    { "7.2-default.txt", "ctr(aes)", 0, "ctr-aes-aesni-avx", CPU },
    { "7.2-default.txt", "gcm(aes)", 0, "generic-gcm-aesni-avx", CPU },
    /* 7.2 lists the device first but AF_ALG binds the next one (the probe
     * finds that by binding each driver name). */
    { "7.2-device.txt", "cbc(aes)", 0, "virtio_crypto_aes_cbc", DEV },
    { "7.2-device.txt", "cbc(aes)", 1, "cbc(ecb(aes-lib))", CPU },
    { "7.2-device.txt", "ctr(aes)", 0, "ctr(aes-lib)", CPU },
    { "7.2-device.txt", "gcm(aes)", 0, "gcm_base(ctr(aes-lib),ghash-lib)", CPU },
};
#undef CPU
#undef DEV
