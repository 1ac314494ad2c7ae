replicas = 
