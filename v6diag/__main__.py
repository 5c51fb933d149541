from v6diag.cli.app import main

main()
