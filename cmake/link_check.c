/* link_check.c — the program a layer's library is linked into, whole and alone with the
 * libraries it declares (cmake/layers.cmake): it links only if the layer calls nothing it
 * did not declare. It is never run. */
int main(void)
{
    return 0;
}
