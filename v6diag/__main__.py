from v6diag.app import main

main()
