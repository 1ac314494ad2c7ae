replicas = "x"
replica  = 2
