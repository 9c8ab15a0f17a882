/* Stands in for test_pipeline in builds against OpenSSL < 3.5. */
#include <stdio.h>

int main(void)
{
    printf("SKIP: built against OpenSSL headers without EVP_CipherPipelineUpdate (3.5+); "
           "the 3.5 build (-DKCAPI_AIO_OPENSSL_PREFIX) runs the pipeline tests\n");
    return 77;
}
