/* Prints the configuration reference generated from config/schema.c.
 * `make docs` puts it into README.md; tests/cli/docs.sh checks it is there. */
#include <stdio.h>

#include "config/config.h"

int main(void)
{
    config_reference_write(stdout);
    return 0;
}
